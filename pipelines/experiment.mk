# Experiment pipelines (included by the top Makefile): the DAG
#
#   [bio-synth] -> bio-scan -> bio-prep -> bio-batch | bio-train -> bio-infer -> bio-eval
#
# as make targets. Every stage writes into a folder of $(WORK) named by a digest of the parts of
# the effective configuration that affect it, chained with its upstream stage's digest
# (the programs' --print-digest PREV:KEYS, the config_digest of their stream headers), so changing one key re-runs only the stages it affects, and a second
# `make` with nothing changed does nothing. Every program writes its output atomically (temp file +
# rename) and recipes run under `bash -o pipefail`, so a failing stage fails the pipeline and
# leaves no half-made target. The run folder $(WORK)/<name>-<digest of the whole config> links to
# every stage's output and holds the report.
#
#   make experiment CONFIG=configs/experiments/x.yaml [ENV=prod] [SET='training.lr=0.01 ...']
#   make demo                    synthetic data, all stages, a report with plots
#   make fvc2002-db1 fvc2002-db2 the real FVC2002 fingerprints (../shared/data/real), paired
#                                chimerically with synthetic irises
#   make compare CONFIG=...      the three fusion modes and each single modality, one table
#   make experiment ... MPI_NP=4 [HOSTS=a,b] [MPIRUN_FLAGS=...]   training as 4 MPI ranks
#
# Programs come from $(BUILD)/bin (built first); a stage depends on its programs' stamps
# ($(BUILD)/stamp/bio-*, which change only when a binary's content does); tracking goes to $(MLRUNS).

WORK ?= runs
MLRUNS ?= mlruns
CONFIG ?=
ENV ?=
SET ?=
EXP_BIN = $(BUILD)/bin
EXP_STAMP = $(BUILD)/stamp
EXP_ARGS = $(foreach c,$(CONFIG),-c $(c)) $(if $(ENV),--env $(ENV)) $(foreach s,$(SET),--set $(s))
EXP_NAME = $(or $(NAME),$(basename $(notdir $(or $(lastword $(CONFIG)),default))))

.PHONY: experiment experiment-run demo fvc2002-db1 fvc2002-db2 compare

# The programs are built by a second make, after `deps` has installed what they link with.
experiment: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory EXP_STAGE=1 experiment-run

demo: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory EXP_STAGE=1 CONFIG=configs/experiments/demo.yaml experiment-run

fvc2002-db1 fvc2002-db2: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory EXP_STAGE=1 NAME=$@ \
	  CONFIG="configs/datasets/$(subst -,_,$@)_chimeric.yaml configs/experiments/fvc2002.yaml" \
	  experiment-run

# The fusion comparison: one experiment per fusion mode and per single modality, then a table of
# the fused (or single-branch) figures of each report.
COMPARE_RUNS = concat attention weighted iris fingerprint
compare: deps
	@$(MAKE) --no-print-directory all
	@set -e; for r in $(COMPARE_RUNS); do \
	  case $$r in iris|fingerprint) s="model.modalities=[$$r]";; *) s="model.fusion=$$r";; esac; \
	  $(MAKE) --no-print-directory EXP_STAGE=1 NAME=$(EXP_NAME)-$$r SET="$(SET) $$s" \
	    experiment-run >&2; done
	@printf '%-12s %9s %9s %9s %9s %9s\n' run accuracy EER FNMR@1% rank-1 rank-5
	@for r in $(COMPARE_RUNS); do \
	  f=$$(ls -t $(WORK)/$(EXP_NAME)-$$r-*/report.yaml | head -1); \
	  sec=fused; \
	  awk -v r=$$r -v sec=$$sec -f pipelines/report_row.awk "$$f"; done

ifdef EXP_STAGE
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DELETE_ON_ERROR:

EXP_CFG_CMD = $(EXP_BIN)/bio-scan $(EXP_ARGS) --print-config
EXP_CHECK := $(shell $(EXP_CFG_CMD) >/dev/null && echo ok)
ifneq ($(EXP_CHECK),ok)
$(error the experiment configuration is invalid (see the message above))
endif
digest = $(shell $(EXP_BIN)/bio-scan $(EXP_ARGS) --print-digest '$(1):$(2)' | cut -c1-16)
EXP_DATA := $(shell $(EXP_CFG_CMD) | awk '/^experiment:/{e=1;next} /^[^ ]/{e=0} e && $$1=="data:"{print $$2}')
# The evaluation protocol (bio-pipeline(7)), from the effective config: scan.split.mode and
# whether scan.split.test holds anything; infer.split names the split scored when set.
EXP_SPLIT := $(shell $(EXP_CFG_CMD) | awk '/^scan:/{s=1;next} /^[^ ]/{s=0} \
  s && /^  split:/{p=1;next} s && /^  [^ ]/{p=0} p && $$1=="mode:"{m=$$2} \
  p && $$1=="test:"{t=($$2+0>0)} END{print m, t}')
EXP_INFER_SPLIT := $(shell $(EXP_CFG_CMD) | awk '/^infer:/{s=1;next} /^[^ ]/{s=0} \
  s && $$1=="split:"{v=$$2; gsub(/["\047]/,"",v); print v}')
EXP_OPENSET := $(filter disjoint,$(firstword $(EXP_SPLIT)))
EXP_HAS_TEST := $(filter 1,$(lastword $(EXP_SPLIT)))
# the split the report scores: infer.split, else test when there is one, else val
EVAL_SPLIT := $(or $(EXP_INFER_SPLIT),$(if $(EXP_HAS_TEST),test,val))
# with a test split, val's predictions are the dev set the thresholds are set on
DEV_SPLIT := $(if $(EXP_HAS_TEST),$(filter-out $(EVAL_SPLIT),val))
D_SYNTH := $(call digest,synth,experiment.seed experiment.data synth)
D_SCAN := $(call digest,$(D_SYNTH),scan)
D_PREP := $(call digest,$(D_SCAN),prep stream)
D_TRAIN := $(call digest,$(D_PREP),experiment.seed batch model training)
D_INFER := $(call digest,$(D_TRAIN),infer)
D_EVAL := $(call digest,$(D_INFER),eval)
D_ALL := $(call digest,all,experiment synth scan prep stream batch model training infer eval)

DATA_DIR = $(WORK)/data-$(D_SYNTH)
MANIFEST = $(WORK)/scan-$(D_SCAN)/manifest.bs
SAMPLES = $(WORK)/prep-$(D_PREP)/samples.bs
MODEL_DIR = $(WORK)/train-$(D_TRAIN)
MODEL = $(MODEL_DIR)/best.ckpt
PREDICTIONS = $(WORK)/infer-$(D_INFER)/predictions.bs
REPORT_DIR = $(WORK)/eval-$(D_EVAL)
REPORT = $(REPORT_DIR)/report.yaml
RUN_DIR = $(WORK)/$(EXP_NAME)-$(D_ALL)

# Synthetic data: only for experiment.data = synth (real sets scan scan.root as configured).
ifeq ($(EXP_DATA),synth)
SCAN_ROOT = $(DATA_DIR)
SCAN_DEP = $(DATA_DIR)/.done
else
SCAN_ROOT =
SCAN_DEP =
endif

# One experiment at a time per $(WORK): the stages run under flock(1) on $(WORK)/.lock, so a second
# `make experiment` in the same tree waits for the first, then finds the stages it shares made
# (and makes only what its own config needs); it never writes into the first's temp folders, and
# the fixed *.tmp names are cleared by the next run after a kill. make -q answers without it.
ifneq ($(EXP_LOCKED)$(findstring q,$(firstword -$(MAKEFLAGS))),)
experiment-run: $(RUN_DIR)/report.yaml
else
experiment-run:
	@mkdir -p $(WORK)
	+@flock $(WORK)/.lock $(MAKE) --no-print-directory EXP_LOCKED=1 experiment-run
endif

$(DATA_DIR)/.done: $(EXP_STAMP)/bio-synth
	rm -rf $(DATA_DIR).tmp
	$(EXP_BIN)/bio-synth $(EXP_ARGS) -o $(DATA_DIR).tmp
	rm -rf $(DATA_DIR) && mv $(DATA_DIR).tmp $(DATA_DIR) && touch $@

$(MANIFEST): $(SCAN_DEP) $(EXP_STAMP)/bio-scan
	@mkdir -p $(@D)
	$(EXP_BIN)/bio-scan $(EXP_ARGS) -o $@ $(SCAN_ROOT)

$(SAMPLES): $(MANIFEST) $(EXP_STAMP)/bio-prep
	@mkdir -p $(@D)
	$(EXP_BIN)/bio-prep $(EXP_ARGS) -o $@ $<

# Training reads its batches through a pipe: no batch file on disk. The stamp appears last.
# best.ckpt is chosen on the val split (bio-train --val reads that split only, never test). In the
# open-set protocol (scan.split.mode disjoint) the val identities are not classes the model
# learns: best.ckpt is then the epoch of the lowest EER of their fused embeddings
# (training.early_stopping.metric val_eer), the dev identities that also set the thresholds;
# the report scores the test identities, which neither choice saw.
# MPI_NP=N trains as N ranks of mpirun instead (HOSTS=a,b for --host, MPIRUN_FLAGS for the rest,
# e.g. '--hostfile FILE' or '--oversubscribe'; under Slurm MPIRUN=srun MPI_NP_FLAG=-n
# MPIRUN_FLAGS=--mpi=pmix, as tests/tools/slurm.bats runs it): the ranks read one batches file in the stage's
# folder, which, like the programs, the configs and the samples, must be at the same absolute
# path on every host (a shared file system); mpirun passes the kernel choice on (-x, KERNEL_ENV
# in pipelines/prep.mk; srun passes the whole environment). The model is the one process's, bit for bit, so the
# stage's digest does not depend on MPI_NP.
VAL_METRIC := $(if $(EXP_OPENSET),--set training.early_stopping.metric=val_eer)
MPI_NP ?=
HOSTS ?=
MPIRUN ?= mpirun
MPI_NP_FLAG ?= -np
MPIRUN_FLAGS ?=
$(MODEL_DIR)/.done: $(SAMPLES) $(EXP_STAMP)/bio-batch $(EXP_STAMP)/bio-train
	rm -rf $(MODEL_DIR).tmp && mkdir -p $(MODEL_DIR).tmp
ifeq ($(strip $(MPI_NP)),)
	$(EXP_BIN)/bio-batch $(EXP_ARGS) $< | \
	  $(EXP_BIN)/bio-train $(EXP_ARGS) --set tracking.uri=$(MLRUNS) \
	    --set tracking.experiment=$(EXP_NAME) --val $< $(VAL_METRIC) -o $(MODEL_DIR).tmp
else
	$(EXP_BIN)/bio-batch $(EXP_ARGS) -o $(abspath $(MODEL_DIR).tmp)/batches.bs $<
	$(MPIRUN) $(MPI_NP_FLAG) $(MPI_NP) $(if $(HOSTS),--host $(HOSTS)) $(MPIRUN_FLAGS) \
	  $(if $(filter mpirun mpiexec orterun,$(notdir $(firstword $(MPIRUN)))),$(foreach v,$(KERNEL_ENV),-x $v)) \
	  $(abspath $(EXP_BIN))/bio-train $(EXP_ARGS) --set tracking.uri=$(abspath $(MLRUNS)) \
	    --set tracking.experiment=$(EXP_NAME) --val $(abspath $<) $(VAL_METRIC) \
	    -o $(abspath $(MODEL_DIR).tmp) \
	    $(abspath $(MODEL_DIR).tmp)/batches.bs
	rm -f $(MODEL_DIR).tmp/batches.bs
endif
	rm -rf $(MODEL_DIR) && mv $(MODEL_DIR).tmp $(MODEL_DIR) && touch $@

# Predictions for the scored split's samples (EVAL_SPLIT: the probes), for the training samples
# (closed-set: the identification gallery and templates, eval.gallery of them per identity
# enrolled; open-set enrols from the scored split itself, its identities being new) and, with a
# test split, for the val samples (the dev set of bio-eval --dev).
$(PREDICTIONS): $(MODEL_DIR)/.done $(EXP_STAMP)/bio-infer
	@mkdir -p $(@D)
	$(if $(EXP_OPENSET),,$(EXP_BIN)/bio-infer $(EXP_ARGS) --split train --embeddings -m $(MODEL) -o $(@D)/enrol.bs $(SAMPLES))
	$(if $(DEV_SPLIT),$(EXP_BIN)/bio-infer $(EXP_ARGS) --split $(DEV_SPLIT) --embeddings -m $(MODEL) -o $(@D)/dev.bs $(SAMPLES))
	$(EXP_BIN)/bio-infer $(EXP_ARGS) --split $(EVAL_SPLIT) --embeddings -m $(MODEL) -o $@ $(SAMPLES)

$(REPORT): $(PREDICTIONS) $(EXP_STAMP)/bio-eval
	rm -rf $(REPORT_DIR).tmp && mkdir -p $(REPORT_DIR).tmp
	$(EXP_BIN)/bio-eval $(EXP_ARGS) --curves $(REPORT_DIR).tmp/curves \
	  --plots $(REPORT_DIR).tmp/plots $(if $(EXP_OPENSET),,--enrol $(<D)/enrol.bs) \
	  $(if $(DEV_SPLIT),--dev $(<D)/dev.bs) \
	  $$(test -s $(MODEL_DIR)/run_id && echo --set tracking.uri=$(MLRUNS) --track-run $$(cat $(MODEL_DIR)/run_id)) \
	  -o $(REPORT_DIR).tmp/report.yaml $<
	rm -rf $(REPORT_DIR) && mv $(REPORT_DIR).tmp $(REPORT_DIR)

$(RUN_DIR)/report.yaml: $(REPORT)
	@mkdir -p $(RUN_DIR)
	$(EXP_BIN)/bio-scan $(EXP_ARGS) --print-config > $(RUN_DIR)/config.yaml
	ln -sfn ../$(notdir $(MANIFEST:/manifest.bs=))/manifest.bs $(RUN_DIR)/manifest.bs
	ln -sfn ../$(notdir $(SAMPLES:/samples.bs=))/samples.bs $(RUN_DIR)/samples.bs
	ln -sfn ../$(notdir $(MODEL_DIR)) $(RUN_DIR)/model
	ln -sfn ../$(notdir $(PREDICTIONS:/predictions.bs=))/predictions.bs $(RUN_DIR)/predictions.bs
	ln -sfn ../$(notdir $(REPORT_DIR))/plots $(RUN_DIR)/plots
	ln -sfn ../$(notdir $(REPORT_DIR))/curves $(RUN_DIR)/curves
	cp $(REPORT) $(RUN_DIR)/report.yaml.tmp && mv $(RUN_DIR)/report.yaml.tmp $@
	@echo "run: $(RUN_DIR) (report.yaml, plots/, curves/)"
endif

# Inference in shards through GNU parallel, joined with cat (bio-streams concatenate):
#   make infer-sharded MODEL=ck/best.ckpt SAMPLES=samples.bs OUT=predictions.bs [SHARDS=4]
# Each job runs `bio-infer -j1 --shard i/SHARDS`; SSHLOGIN=2/host1,2/host2 runs them on other
# machines over ssh (pipelines/prep.mk says how). OUT appears only when every shard succeeded.
INFER_FLAGS ?=
INFER_PARALLEL_FLAGS ?=
# The checkpoint by its absolute path (the predictions' header names it): the same on every host
# with SSHLOGIN, where the checkpoint and the samples are read at their absolute paths (shared, as
# the programs are); models:/ and runs:/ URIs as given.
INFER_MODEL = $(if $(findstring :/,$(MODEL)),$(MODEL),$(abspath $(MODEL)))
.PHONY: infer-sharded
infer-sharded: $(BUILD)/bin/bio-infer
	@if [ -z "$(MODEL)" ] || [ -z "$(SAMPLES)" ] || [ -z "$(OUT)" ]; then \
	  echo "usage: make infer-sharded MODEL=ck.ckpt SAMPLES=samples.bs OUT=predictions.bs [SHARDS=4]" >&2; exit 2; fi
	@set -e; d=$$(mktemp -d "$(OUT).shards.XXXXXX"); trap 'rm -rf "$$d"' EXIT; \
	if [ -n "$(SSHLOGIN)" ]; then \
	  wd=.biopipe-shards/$$(basename "$$d"); trap '$(SHARD_REMOTE_CLEAN); rm -rf "$$d"' EXIT; \
	  (cd "$$d" && seq 0 $$(($(SHARDS) - 1)) | parallel --halt now,fail=1 $(SHARD_REMOTE) \
	    $(INFER_PARALLEL_FLAGS) \
	    "$(abspath $(BUILD))/bin/bio-infer" -j1 $(INFER_FLAGS) -m "$(INFER_MODEL)" \
	    --shard {}/$(SHARDS) -o shard-{}.bs "$(abspath $(SAMPLES))"); \
	else \
	  seq 0 $$(($(SHARDS) - 1)) | parallel --halt now,fail=1 -j $(PREP_JOBS) $(INFER_PARALLEL_FLAGS) \
	    "$(BUILD)/bin/bio-infer" -j1 $(INFER_FLAGS) -m "$(INFER_MODEL)" --shard {}/$(SHARDS) \
	    -o "$$d/shard-{}.bs" "$(SAMPLES)"; \
	fi; \
	parts=; i=0; while [ $$i -lt $(SHARDS) ]; do parts="$$parts $$d/shard-$$i.bs"; i=$$((i + 1)); done; \
	cat $$parts > "$$d/joined.bs"; mv "$$d/joined.bs" "$(OUT)"; \
	echo "infer-sharded: $(SHARDS) shards of $(SAMPLES) joined into $(OUT)"
