#!/usr/bin/python3
"""Validates an MLflow local file store (mlruns/) the way MLflow's FileStore reads it, against the
rules of ../shared/REFERENCE.md section 1 (from mlflow/store/tracking/file_store.py,
model_registry/file_store.py, entities/*, utils/validation.py). MLflow itself is not a Debian
package, so this validator stands in for `mlflow ui` in the tests.

Usage:
  check_mlruns.py ROOT [--exact] [--experiment NAME] [--runs N] [--status S] [--quiet]

  ROOT             the store (a path, or file:///abs/path)
  --exact          every meta.yaml must be byte-identical to PyYAML's safe_dump of its content
                   (block style, sorted keys), i.e. to what MLflow itself would write
  --experiment N   an experiment named N must exist
  --runs N         exactly N runs (all experiments)
  --status S       every run has status S (RUNNING, FINISHED, FAILED, KILLED or the int)
  --quiet          no summary line

Exit 0 and a summary line when the store is valid; exit 1 and one line per problem
("check_mlruns.py: PATH: problem") otherwise; exit 2 on usage errors. Uses Debian's python3-yaml
(PyYAML safe loader, as MLflow does) when installed; without it, a small reader of the flat
meta.yaml subset the file store uses, and --exact is skipped with a note.
"""
import argparse
import math
import os
import posixpath
import re
import sys
import urllib.parse

try:
    import yaml  # Debian python3-yaml: PyYAML's safe loader, as MLflow reads
except ImportError:  # pragma: no cover - exercised where python3-yaml is missing
    yaml = None


class FlatYamlError(ValueError):
    pass


_INT_RE = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_FLOAT_RE = re.compile(r"^[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?$")


def _plain_value(text):
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"):
        return True
    if text in ("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"):
        return False
    if _INT_RE.match(text):
        return int(text.replace("_", ""))
    if _FLOAT_RE.match(text) and text not in (".", "+.", "-."):
        return float(text.replace("_", ""))
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return text


def _fold(lines):
    """YAML flow folding of a multi-line scalar: spaces and tabs around a line break go, a single
    line break becomes a space, each further empty line a newline. (NEL, LS and PS, which YAML
    1.1 also counts as line breaks, are not handled: the file store never needs them.)"""
    out, pending = "", 0
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if i:
            line = line.lstrip(" \t")
        if i < last:
            line = line.rstrip(" \t")
        if 0 < i < last and line == "":
            pending += 1
            continue
        if i:
            out += "\n" * pending if pending else " "
            pending = 0
        out += line
    return out


def flat_yaml_load(text):
    """A tiny reader for the flat meta.yaml files of the file store (used only where PyYAML is
    missing): top-level "key: value" lines with plain, single- or double-quoted scalars (folded
    over indented lines), null, ints, floats, booleans, [] and {}."""
    data, key, buf = {}, None, []

    def finish():
        if key is None:
            return
        raw = "\n".join(buf)
        v = raw.strip(" ")
        if v.startswith("'"):
            if not v.endswith("'") or len(v) < 2:
                raise FlatYamlError("unterminated single-quoted value of %r" % key)
            data[key] = _fold(v[1:-1].split("\n")).replace("''", "'")
        elif v.startswith('"'):
            if not v.endswith('"') or len(v) < 2:
                raise FlatYamlError("unterminated double-quoted value of %r" % key)
            body = re.sub(r"\\\n *", "", v[1:-1])  # escaped line breaks
            body = _fold(body.split("\n"))
            esc = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f",
                   "r": "\r", "e": "\x1b", '"': '"', "\\": "\\", "N": "\x85", "_": "\xa0",
                   "L": "\u2028", "P": "\u2029", " ": " ", "/": "/"}
            out, i = "", 0
            while i < len(body):
                c = body[i]
                if c != "\\":
                    out += c
                    i += 1
                    continue
                n = body[i + 1] if i + 1 < len(body) else ""
                if n in esc:
                    out += esc[n]
                    i += 2
                elif n in "xuU":
                    w = {"x": 2, "u": 4, "U": 8}[n]
                    out += chr(int(body[i + 2:i + 2 + w], 16))
                    i += 2 + w
                else:
                    raise FlatYamlError("bad escape in %r" % key)
            data[key] = out
        else:
            data[key] = _plain_value(_fold(raw.split("\n")).strip(" "))

    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#") and not buf:
            if key is not None and line == "":
                buf.append("")
            continue
        if line[0] != " ":
            finish()
            if ":" not in line:
                raise FlatYamlError("line %r is not 'key: value'" % line)
            key, _, rest = line.partition(":")
            if key in data:
                raise FlatYamlError("duplicate key %r" % key)
            buf = [rest[1:] if rest.startswith(" ") else rest]
        else:
            if key is None:
                raise FlatYamlError("indented line before any key")
            buf.append(line)
    while buf and buf[-1] == "":
        buf.pop()
    finish()
    return data

EXPERIMENT_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")
RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
KEY_RE = re.compile(r"^[/\w.\- ]*$")
ALIAS_RE = re.compile(r"^[\w\-]*$")
STATUS = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}
RESERVED_EXPERIMENT_FOLDERS = {"tags", "datasets", "traces"}
EXPERIMENT_KEYS = {"artifact_location", "creation_time", "experiment_id", "last_update_time",
                   "lifecycle_stage", "name"}
RUN_KEYS = {"artifact_uri", "end_time", "entry_point_name", "experiment_id", "lifecycle_stage",
            "run_id", "run_name", "run_uuid", "source_name", "source_type", "source_version",
            "start_time", "status", "tags", "user_id", "deleted_time"}
RUN_REQUIRED = RUN_KEYS - {"deleted_time", "run_name"}
MODEL_KEYS = {"name", "creation_timestamp", "last_updated_timestamp", "description", "aliases"}
VERSION_KEYS = {"name", "version", "creation_timestamp", "last_updated_timestamp", "description",
                "user_id", "current_stage", "source", "run_id", "run_link", "status",
                "status_message", "aliases", "storage_location"}
STAGES = {"None", "Staging", "Production", "Archived", "Deleted_Internal"}
MAX_PARAM_VAL = 6000
MAX_TAG_VAL = 5000
MAX_KEY = 250
MS_MIN, MS_MAX = 10**12, 10**13  # 2001 .. 2286 in milliseconds: catches seconds and microseconds


class Checker:
    def __init__(self, exact):
        self.exact = exact
        self.problems = []
        self.counts = dict(experiments=0, runs=0, params=0, metrics=0, points=0, tags=0,
                           models=0, versions=0, artifacts=0)
        self.status = {}
        self.run_ids = set()
        self.exp_names = {}

    def bad(self, path, msg):
        self.problems.append("%s: %s" % (path, msg))

    def load_yaml(self, path):
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            self.bad(path, "cannot read: %s" % e.strerror)
            return None
        try:
            text = raw.decode("utf-8")
            data = yaml.safe_load(text) if yaml else flat_yaml_load(text)
        except (yaml.YAMLError if yaml else FlatYamlError, UnicodeDecodeError) as e:
            self.bad(path, "not valid YAML: %s" % str(e).replace("\n", " "))
            return None
        if not isinstance(data, dict):
            self.bad(path, "not a YAML mapping")
            return None
        if self.exact and yaml:
            want = yaml.safe_dump(data, default_flow_style=False, allow_unicode=True)
            if raw.decode("utf-8") != want:
                self.bad(path, "differs from PyYAML's safe_dump of the same data:\n--- file\n%s"
                         "--- PyYAML\n%s" % (raw.decode("utf-8"), want))
        return data

    def check_ms(self, path, key, v, nullable=False):
        if v is None and nullable:
            return
        if not isinstance(v, int) or isinstance(v, bool):
            self.bad(path, "%s is %r, not an integer" % (key, v))
        elif not MS_MIN <= v < MS_MAX:
            self.bad(path, "%s %d is not a time in milliseconds since the epoch" % (key, v))

    def check_key(self, path, key, what):
        if len(key) > MAX_KEY:
            self.bad(path, "%s name longer than %d" % (what, MAX_KEY))
        if not KEY_RE.match(key):
            self.bad(path, "%s name %r has characters MLflow rejects" % (what, key))
        if posixpath.normpath(key) != key or key == "." or key.startswith("..") or \
                key.startswith("/"):
            self.bad(path, "%s name %r is not path-unique" % (what, key))

    def files_under(self, d):
        """Relative paths of the files under d, as MLflow's _get_resource_files walks them."""
        out = []
        for root, _, files in os.walk(d):
            for name in files:
                out.append(os.path.relpath(os.path.join(root, name), d))
        return sorted(out)

    def check_store(self, root):
        if not os.path.isdir(root):
            self.bad(root, "not a directory")
            return
        if not os.path.isdir(os.path.join(root, ".trash")):
            self.bad(root, "no .trash directory")
        exps = [e for e in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, e))
                and e not in (".trash", "models")]
        if "0" not in exps:
            self.bad(root, "no default experiment 0")
        for e in exps:
            self.check_experiment(root, e, deleted=False)
        trash = os.path.join(root, ".trash")
        if os.path.isdir(trash):
            for e in sorted(os.listdir(trash)):
                if os.path.isdir(os.path.join(trash, e)):
                    self.check_experiment(trash, e, deleted=True)
        models = os.path.join(root, "models")
        if os.path.isdir(models):
            for m in sorted(os.listdir(models)):
                if os.path.isdir(os.path.join(models, m)):
                    self.check_model(root, os.path.join(models, m))

    def load_meta(self, d, absent, counter, known, required):
        """The path of d's meta.yaml and its content, counted in counts[counter] once read; None
        for the content when the file is absent (the note absent), unreadable, or without one of
        the required keys (a note; keys outside known are a note too)."""
        meta_path = os.path.join(d, "meta.yaml")
        if not os.path.exists(meta_path):
            self.bad(d, absent)
            return meta_path, None
        m = self.load_yaml(meta_path)
        if m is None:
            return meta_path, None
        self.counts[counter] += 1
        extra = set(m) - known
        missing = set(required) - set(m)
        if extra:
            self.bad(meta_path, "unknown keys %s" % sorted(extra))
        if missing:
            self.bad(meta_path, "missing keys %s" % sorted(missing))
            return meta_path, None
        return meta_path, m

    def check_experiment(self, parent, eid, deleted):
        d = os.path.join(parent, eid)
        meta_path, m = self.load_meta(d, "experiment directory without meta.yaml", "experiments",
                                      EXPERIMENT_KEYS,
                                      {"artifact_location", "experiment_id", "lifecycle_stage",
                                       "name"})
        if m is None:
            return
        if not isinstance(m["experiment_id"], str):
            self.bad(meta_path, "experiment_id %r is not a string" % (m["experiment_id"],))
        elif m["experiment_id"] != eid:
            self.bad(meta_path, "experiment_id %r differs from its directory %r"
                     % (m["experiment_id"], eid))
        if not EXPERIMENT_ID_RE.match(eid):
            self.bad(d, "experiment id %r does not match %s" % (eid, EXPERIMENT_ID_RE.pattern))
        if m["lifecycle_stage"] not in ("active", "deleted"):
            self.bad(meta_path, "lifecycle_stage %r" % m["lifecycle_stage"])
        name = m["name"]
        if not isinstance(name, str) or not name or len(name) > 500:
            self.bad(meta_path, "bad experiment name %r" % (name,))
        elif name in self.exp_names:
            self.bad(meta_path, "experiment name %r also used by %s" % (name, self.exp_names[name]))
        else:
            self.exp_names[name] = eid
        if eid == "0" and name != "Default":
            self.bad(meta_path, "experiment 0 is named %r, not Default" % name)
        for k in ("creation_time", "last_update_time"):
            if k in m:
                self.check_ms(meta_path, k, m[k])
        loc = m["artifact_location"]
        if not isinstance(loc, str) or not loc:
            self.bad(meta_path, "bad artifact_location %r" % (loc,))
        elif loc.startswith("file:") and not loc.endswith("/" + eid):
            self.bad(meta_path, "artifact_location %r does not end with /%s" % (loc, eid))
        tags = os.path.join(d, "tags")
        if os.path.isdir(tags):
            for t in self.files_under(tags):
                self.check_key(os.path.join(tags, t), t, "experiment tag")
        for r in sorted(os.listdir(d)):
            rd = os.path.join(d, r)
            if os.path.isdir(rd) and r not in RESERVED_EXPERIMENT_FOLDERS:
                self.check_run(rd, r, eid, loc if isinstance(loc, str) else "")

    def check_run(self, d, rid, eid, exp_loc):
        meta_path, m = self.load_meta(d, "run directory without meta.yaml (MLflow skips it)", "runs",
                                      RUN_KEYS, RUN_REQUIRED)
        if m is None:
            return
        if not RUN_ID_RE.match(rid):
            self.bad(d, "run id %r does not match %s" % (rid, RUN_ID_RE.pattern))
        if m["run_id"] != rid or m["run_uuid"] != rid:
            self.bad(meta_path, "run_id %r / run_uuid %r differ from the directory %r"
                     % (m["run_id"], m["run_uuid"], rid))
        if rid in self.run_ids:
            self.bad(d, "run id %s appears twice" % rid)
        self.run_ids.add(rid)
        if m["experiment_id"] != eid:
            self.bad(meta_path, "experiment_id %r differs from the parent directory %r"
                     % (m["experiment_id"], eid))
        st = m["status"]
        if not isinstance(st, int) or isinstance(st, bool) or st not in STATUS.values():
            self.bad(meta_path, "status %r is not an integer 1..5" % (st,))
        self.status[rid] = st
        self.check_ms(meta_path, "start_time", m["start_time"])
        self.check_ms(meta_path, "end_time", m["end_time"], nullable=True)
        if "deleted_time" in m:
            self.check_ms(meta_path, "deleted_time", m["deleted_time"], nullable=True)
        if isinstance(m["end_time"], int) and isinstance(m["start_time"], int) and \
                m["end_time"] < m["start_time"]:
            self.bad(meta_path, "end_time before start_time")
        if st == 1 and m["end_time"] is not None:
            self.bad(meta_path, "a RUNNING run with an end_time")
        if st in (3, 4, 5) and m["end_time"] is None:
            self.bad(meta_path, "an ended run (status %d) without end_time" % st)
        if m["lifecycle_stage"] not in ("active", "deleted"):
            self.bad(meta_path, "lifecycle_stage %r" % m["lifecycle_stage"])
        if m["source_type"] != 4:
            self.bad(meta_path, "source_type %r, the file store writes 4 (LOCAL)" % m["source_type"])
        for k in ("entry_point_name", "source_name", "source_version"):
            if m[k] != "":
                self.bad(meta_path, "%s is %r, MLflow writes ''" % (k, m[k]))
        if m["tags"] != []:
            self.bad(meta_path, "tags is %r, MLflow writes []" % (m["tags"],))
        if not isinstance(m["user_id"], str):
            self.bad(meta_path, "user_id %r is not a string" % (m["user_id"],))
        if "run_name" in m and not isinstance(m["run_name"], str):
            self.bad(meta_path, "run_name %r is not a string" % (m["run_name"],))
        au = m["artifact_uri"]
        if exp_loc and au != exp_loc + "/" + rid + "/artifacts":
            self.bad(meta_path, "artifact_uri %r is not %s/%s/artifacts" % (au, exp_loc, rid))
        if isinstance(au, str) and au.startswith("file:"):
            local = urllib.parse.unquote(urllib.parse.urlparse(au).path)
            if not os.path.isdir(local):
                self.bad(meta_path, "artifact directory %s does not exist" % local)
            else:
                self.counts["artifacts"] += len(self.files_under(local))
        # params
        pd = os.path.join(d, "params")
        for p in self.files_under(pd) if os.path.isdir(pd) else []:
            path = os.path.join(pd, p)
            self.check_key(path, p, "param")
            self.counts["params"] += 1
            with open(path, encoding="utf-8") as f:
                v = f.read()
            if v.endswith("\n"):
                self.bad(path, "param value ends with a newline (MLflow writes the raw value)")
            if len(v) > MAX_PARAM_VAL:
                self.bad(path, "param value longer than %d" % MAX_PARAM_VAL)
        # metrics
        md = os.path.join(d, "metrics")
        for k in self.files_under(md) if os.path.isdir(md) else []:
            path = os.path.join(md, k)
            self.check_key(path, k, "metric")
            self.counts["metrics"] += 1
            self.check_metric_file(path)
        # tags
        td = os.path.join(d, "tags")
        tags = {}
        for t in self.files_under(td) if os.path.isdir(td) else []:
            path = os.path.join(td, t)
            self.check_key(path, t, "tag")
            self.counts["tags"] += 1
            with open(path, encoding="utf-8") as f:
                tags[t] = f.read()
            if len(tags[t]) > MAX_TAG_VAL:
                self.bad(path, "tag value longer than %d" % MAX_TAG_VAL)
        if "mlflow.runName" in tags and m.get("run_name") not in (None, tags["mlflow.runName"]):
            self.bad(meta_path, "run_name %r differs from tag mlflow.runName %r"
                     % (m.get("run_name"), tags["mlflow.runName"]))

    def check_metric_file(self, path):
        with open(path, "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            self.bad(path, "metric file is not ASCII")
            return
        if not text:
            self.bad(path, "empty metric file (MLflow: 'No data found')")
            return
        if not text.endswith("\n"):
            self.bad(path, "last metric line has no newline")
        for i, line in enumerate(text.split("\n")[:-1], 1):
            parts = line.strip().split(" ")
            if len(parts) not in (2, 3) or line != line.strip():
                self.bad(path, "line %d: %r is not '<timestamp_ms> <value> <step>'" % (i, line))
                continue
            try:
                ts = int(parts[0])
                val = float(parts[1])
                step = int(parts[2]) if len(parts) == 3 else 0
            except ValueError:
                self.bad(path, "line %d: %r does not parse as int, float, int" % (i, line))
                continue
            if not MS_MIN <= ts < MS_MAX:
                self.bad(path, "line %d: timestamp %d is not in milliseconds" % (i, ts))
            if not -2**63 <= step < 2**63:
                self.bad(path, "line %d: step out of int64 range" % i)
            if math.isnan(val) and parts[1] != "nan":
                self.bad(path, "line %d: NaN written as %r" % (i, parts[1]))
            self.counts["points"] += 1

    def check_model(self, root, d):
        name = os.path.basename(d)
        meta_path = os.path.join(d, "meta.yaml")
        if "%" in name:
            self.bad(d, "model name contains '%'")
        m = self.load_yaml(meta_path) if os.path.exists(meta_path) else None
        if m is None:
            if not os.path.exists(meta_path):
                self.bad(d, "registered model without meta.yaml")
            return
        self.counts["models"] += 1
        if set(m) - MODEL_KEYS:
            self.bad(meta_path, "unknown keys %s" % sorted(set(m) - MODEL_KEYS))
        if m.get("name") != name:
            self.bad(meta_path, "name %r differs from the directory %r" % (m.get("name"), name))
        self.check_ms(meta_path, "creation_timestamp", m.get("creation_timestamp"))
        self.check_ms(meta_path, "last_updated_timestamp", m.get("last_updated_timestamp"))
        versions = set()
        for v in sorted(os.listdir(d)):
            vd = os.path.join(d, v)
            if not (os.path.isdir(vd) and v.startswith("version-")):
                continue
            vm_path = os.path.join(vd, "meta.yaml")
            vm = self.load_yaml(vm_path)
            if vm is None:
                continue
            self.counts["versions"] += 1
            if set(vm) - VERSION_KEYS:
                self.bad(vm_path, "unknown keys %s" % sorted(set(vm) - VERSION_KEYS))
            for k in ("name", "version", "source", "current_stage", "creation_timestamp"):
                if k not in vm:
                    self.bad(vm_path, "missing key %s" % k)
            if vm.get("name") != name:
                self.bad(vm_path, "name %r is not %r" % (vm.get("name"), name))
            ver = vm.get("version")
            if not isinstance(ver, int) or isinstance(ver, bool) or "version-%s" % ver != v:
                self.bad(vm_path, "version %r does not match the directory %s" % (ver, v))
            else:
                versions.add(str(ver))
            if vm.get("current_stage") not in STAGES:
                self.bad(vm_path, "current_stage %r" % (vm.get("current_stage"),))
            if vm.get("status", "READY") not in ("READY", "PENDING_REGISTRATION",
                                                 "FAILED_REGISTRATION"):
                self.bad(vm_path, "status %r" % (vm.get("status"),))
            self.check_ms(vm_path, "creation_timestamp", vm.get("creation_timestamp"))
            if not isinstance(vm.get("source"), str) or not vm.get("source"):
                self.bad(vm_path, "empty source")
            rid = vm.get("run_id")
            if rid is not None and rid not in self.run_ids:
                self.bad(vm_path, "run_id %r is not a run of this store" % rid)
        ad = os.path.join(d, "aliases")
        if os.path.isdir(ad):
            for a in os.listdir(ad):
                ap_ = os.path.join(ad, a)
                if not ALIAS_RE.match(a) or len(a) > 255 or a.lower() == "latest" or \
                        re.match(r"^[vV]\d+$", a):
                    self.bad(ap_, "alias name %r is not allowed by MLflow" % a)
                with open(ap_) as f:
                    if f.read() not in versions:
                        self.bad(ap_, "alias points to no version")


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("Usage:\n")[1].split("\n")[0].strip())
    ap.add_argument("root")
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--experiment")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--status")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    root = a.root
    if root.startswith("file:"):
        root = urllib.parse.unquote(urllib.parse.urlparse(root).path)
    if a.exact and yaml is None:
        print("check_mlruns.py: note: python3-yaml is missing: --exact comparison skipped",
              file=sys.stderr)
    c = Checker(a.exact)
    c.check_store(root)
    if a.experiment is not None and a.experiment not in c.exp_names:
        c.bad(root, "no experiment named %r" % a.experiment)
    if a.runs is not None and c.counts["runs"] != a.runs:
        c.bad(root, "%d runs, expected %d" % (c.counts["runs"], a.runs))
    if a.status is not None:
        want = STATUS.get(a.status, None) if not a.status.isdigit() else int(a.status)
        for rid, st in sorted(c.status.items()):
            if st != want:
                c.bad(root, "run %s has status %r, expected %s" % (rid, st, a.status))
    if c.problems:
        for p in c.problems:
            print("check_mlruns.py: %s" % p, file=sys.stderr)
        return 1
    if not a.quiet:
        print("%s: ok: %s" % (root, ", ".join("%d %s" % (v, k) for k, v in c.counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
