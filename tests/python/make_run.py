#!/usr/bin/python3
"""Writes a finished MLflow file-store run (as MLflow 2.x's FileStore lays it out) with a few
per-epoch metrics, for the bio-eval tracking tests. Prints the run directory.
Usage: make_run.py MLRUNS_DIR RUN_ID [STATUS]"""
import os
import sys

root, run_id = os.path.abspath(sys.argv[1]), sys.argv[2]
status = int(sys.argv[3]) if len(sys.argv) > 3 else 3
exp = os.path.join(root, "0")
run = os.path.join(exp, run_id)
os.makedirs(os.path.join(run, "metrics"), exist_ok=True)
os.makedirs(os.path.join(run, "artifacts"), exist_ok=True)
os.makedirs(os.path.join(root, ".trash"), exist_ok=True)
with open(os.path.join(exp, "meta.yaml"), "w") as f:
    f.write("artifact_location: file://%s\ncreation_time: 1700000000000\nexperiment_id: '0'\n"
            "last_update_time: 1700000000000\nlifecycle_stage: active\nname: Default\n" % exp)
with open(os.path.join(run, "meta.yaml"), "w") as f:
    f.write("artifact_uri: file://%s/artifacts\nend_time: 1700000100000\nentry_point_name: ''\n"
            "experiment_id: '0'\nlifecycle_stage: active\nrun_id: %s\nrun_name: train\n"
            "run_uuid: %s\nsource_name: ''\nsource_type: 4\nsource_version: ''\n"
            "start_time: 1700000000000\nstatus: %d\ntags: []\nuser_id: test\n"
            % (run, run_id, run_id, status))
for name, vals in (("train_loss", [2.3, 1.1, 0.6, 0.4]), ("val_loss", [2.4, 1.3, 0.9, 0.8]),
                   ("val_accuracy", [0.2, 0.6, 0.8, 0.85])):
    with open(os.path.join(run, "metrics", name), "w") as f:
        for step, v in enumerate(vals):
            f.write("%d %r %d\n" % (1700000000000 + step, v, step))
print(run)
