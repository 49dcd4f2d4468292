"""Reference scan in plain Python for bench/scan: walk the modality folders sorted, match each
relative path with the same regexes as configs/base.yaml, key by (subject_side, sample), pair
iris with fingerprint, sort identities and write the records with msgpack. What a Python
pipeline's dataset-discovery step does; bio-scan does the same plus splits and reporting."""
import os
import re
import sys

import msgpack

root, out = sys.argv[1], sys.argv[2]
patterns = {
    'iris': re.compile(r'^([0-9]+)_([LR])_([0-9]+)\.(bmp|png|BMP|PNG|tif|tiff|jpg|jpeg)$'),
    'fingerprint': re.compile(
        r'^([0-9]+)_([LR])_([a-z]+)_([0-9]+)\.(bmp|png|BMP|PNG|tif|tiff|jpg|jpeg)$'),
}
keys = {}
unparsed = 0
for mod, pat in patterns.items():
    base = os.path.join(root, mod)
    for d, dirs, files in os.walk(base):
        dirs.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(d, f), base)
            m = pat.match(rel)
            if not m:
                unparsed += 1
                continue
            g = m.groups()
            key = (g[0] + '_' + g[1], g[-2])
            keys.setdefault(key, {})[mod] = os.path.join(base, rel)
pairs = sorted(k for k, v in keys.items() if len(v) == 2)
labels = sorted({k[0] for k in pairs})
index = {n: i for i, n in enumerate(labels)}
with open(out, 'wb') as f:
    f.write(msgpack.packb({'bio-stream': 1, 'kind': 'manifest',
                           'meta': {'labels': labels, 'modalities': list(patterns)}}))
    for k in pairs:
        f.write(msgpack.packb({'id': k[0] + '/' + k[1], 'label': index[k[0]], 'identity': k[0],
                               'split': 'train', **keys[k]}))
    f.write(msgpack.packb({'end': len(pairs)}))
