#!/usr/bin/env python3
"""One source of truth for defaults: every configuration key the C sources read with a
bio_config_get_* getter (which take no default) must be defined in configs/base.yaml, with a
non-null value; keys built at run time (a modality's scan.<name>.root) are read through
bio_config_has first and are not checked here. Prints one line per missing key and exits 1, or
prints the count of keys checked.

    check_config_keys.py ROOT [--self-test]

--self-test: checks that a source reading a key base.yaml lacks is caught (the check can fail).
"""
import glob
import os
import re
import sys

import yaml

GETTER = re.compile(r'bio_config_get_(?:str|int|double|bool|int_range|double_range)\(\s*[^,()]+,\s*"([^"]+)"')


def keys_in(text):
    return GETTER.findall(text)


def lookup(base, path):
    node = base
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check(base, sources):
    missing = []
    n = 0
    for name, text in sources:
        for key in keys_in(text):
            n += 1
            found, value = lookup(base, key)
            if not found:
                missing.append("%s: reads %s, which configs/base.yaml does not define" % (name, key))
            elif value is None:
                missing.append("%s: reads %s, null in configs/base.yaml" % (name, key))
    return n, missing


def main():
    root = sys.argv[1]
    with open(os.path.join(root, "configs/base.yaml")) as f:
        base = yaml.safe_load(f)
    if "--self-test" in sys.argv[2:]:
        n, missing = check(base, [("x.c", 'bio_config_get_int(cfg, "training.no_such_key", &v, &err)')])
        assert n == 1 and len(missing) == 1, (n, missing)
        n, missing = check(base, [("x.c", 'bio_config_get_double_range(c, "training.lr", 0, 1, &d, e)')])
        assert n == 1 and not missing, missing
        print("self-test ok")
        return 0
    sources = []
    for pattern in ("lib/*.c", "lib/kernels/*.c", "tools/*.c"):
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            with open(path) as f:
                sources.append((os.path.relpath(path, root), f.read()))
    n, missing = check(base, sources)
    for line in missing:
        print(line)
    if missing:
        return 1
    if n < 50:
        print("only %d getter calls found: the pattern no longer matches the sources" % n)
        return 1
    print("%d keys read by the programs, all defined in configs/base.yaml" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
