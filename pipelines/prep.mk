# Preprocessing recipes (included by the top Makefile).
#
#   make prep-sharded MANIFEST=manifest.bs OUT=samples.bs [SHARDS=4] [PREP_JOBS=2]
#
# runs `bio-prep --shard i/SHARDS` for i = 0..SHARDS-1 as GNU parallel jobs (one thread each,
# PREP_JOBS at a time, default: the cores), stops at the first failing shard
# (--halt now,fail=1), writes each shard with -o (atomically) into a temporary folder beside OUT,
# and joins them with cat: bio-streams concatenate, so every reader takes the joined file as one
# stream holding the same samples as one bio-prep run (grouped by shard). OUT appears atomically
# and only when every shard succeeded.
#
# More machines: GNU parallel runs the same jobs on ssh hosts (passwordless ssh; bio-prep and the
# images at the same paths there, e.g. a shared file system), shipping the manifest once per host
# and bringing each shard back:
#
#   seq 0 7 | parallel -S 4/host1,4/host2,: --halt now,fail=1 --basefile manifest.bs \
#       --return shard-{}.bs --cleanup 'bio-prep -j1 --shard {}/8 -o shard-{}.bs manifest.bs'
#   cat shard-0.bs shard-1.bs ... shard-7.bs > samples.bs
#
# (with image files given per job instead, `--trc {/.}.bs` sends each input and returns its
# output). PREP_PARALLEL_FLAGS adds options to the local parallel call, e.g.
# PREP_PARALLEL_FLAGS='-S 2/host1,: --basefile manifest.bs' when the paths match everywhere.
#
#   make bench-prep     bench/prep: bio-prep against the PIL + numpy reference (see bench/prep)

SHARDS ?= 4
PREP_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Other machines (make prep-sharded / infer-sharded SSHLOGIN=2/host1,2/host2): GNU parallel runs
# the shards there over ssh (its --sshlogin; PARALLEL_SSH picks the ssh command, e.g.
# 'ssh -F my_config'), in a folder of the run's own below the remote home (--wd), the input stream
# (and the checkpoint) sent once per host (--basefile), each shard brought back (--return) and
# removed there (--cleanup), the folder removed at the end. The programs and the images must be at the same absolute paths on
# every host (a shared file system or the same install); relative image paths of the manifest are
# resolved against the folder make runs in (bio-prep --root), as a local run does.
SSHLOGIN ?=
# What picks the kernels (bio-*(1) ENVIRONMENT) travels to the other hosts when it is set here:
# an ssh session or a remote rank starts with the remote's login environment, and a different
# GEMM there (OpenBLAS's core or biopipe's own) would give other last bits than a local run.
KERNEL_ENV = $(foreach v,OPENBLAS_CORETYPE BIO_CPU BIO_BLAS BIO_CONV,$(if $(value $v),$v))
SHARD_REMOTE = -S $(SSHLOGIN) --wd "$$wd" --return shard-{}.bs --cleanup \
  $(foreach v,$(KERNEL_ENV),--env $v)
# Removes the run's folder on every host.
SHARD_REMOTE_CLEAN = parallel --nonall -S $(SSHLOGIN) rm -rf "$$wd" </dev/null || true
PREP_FLAGS ?=
PREP_PARALLEL_FLAGS ?=
BIO_PREP ?= $(BUILD)/bin/bio-prep

.PHONY: prep-sharded bench-prep

# Builds bio-prep first unless BIO_PREP is given (command line or environment: an installed
# bio-prep, or the one under test).
prep-sharded: $(if $(filter file default,$(origin BIO_PREP)),$(BUILD)/bin/bio-prep)
	@if [ -z "$(MANIFEST)" ] || [ -z "$(OUT)" ]; then \
	  echo "usage: make prep-sharded MANIFEST=manifest.bs OUT=samples.bs [SHARDS=4]" >&2; exit 2; fi
	@set -e; d=$$(mktemp -d "$(OUT).shards.XXXXXX"); trap 'rm -rf "$$d"' EXIT; \
	if [ -n "$(SSHLOGIN)" ]; then \
	  cp "$(MANIFEST)" "$$d/manifest.bs"; here=$$(pwd); wd=.biopipe-shards/$$(basename "$$d"); \
	  trap '$(SHARD_REMOTE_CLEAN); rm -rf "$$d"' EXIT; \
	  (cd "$$d" && seq 0 $$(($(SHARDS) - 1)) | parallel --halt now,fail=1 $(SHARD_REMOTE) \
	    --basefile manifest.bs $(PREP_PARALLEL_FLAGS) \
	    "$(abspath $(BIO_PREP))" -j1 --root "$$here" $(PREP_FLAGS) --shard {}/$(SHARDS) \
	    -o shard-{}.bs manifest.bs); \
	else \
	  seq 0 $$(($(SHARDS) - 1)) | parallel --halt now,fail=1 -j $(PREP_JOBS) $(PREP_PARALLEL_FLAGS) \
	    "$(BIO_PREP)" -j1 $(PREP_FLAGS) --shard {}/$(SHARDS) -o "$$d/shard-{}.bs" "$(MANIFEST)"; \
	fi; \
	parts=; i=0; while [ $$i -lt $(SHARDS) ]; do parts="$$parts $$d/shard-$$i.bs"; i=$$((i + 1)); done; \
	cat $$parts > "$$d/joined.bs"; mv "$$d/joined.bs" "$(OUT)"; \
	echo "prep-sharded: $(SHARDS) shards of $(MANIFEST) joined into $(OUT)"

# The bench's decode-only floor: reads and decodes each image with libbio, nothing else.
$(BUILD)/bench/prep_decode: bench/prep/decode_only.c $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -o $@ $< $(LIBBIO) $(LDFLAGS) $(LDLIBS)

bench: bench-prep

bench-prep: $(BUILD)/bin/bio-prep $(BUILD)/bench/prep_decode
	$(PYTHON) bench/prep/bench.py --build "$(BUILD)"

# bench/kernels: the per-layer and GEMM kernels against PyTorch and OpenBLAS (bench/kernels/run.sh)
$(BUILD)/bench/layer_bench: bench/kernels/layer_bench.c $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -o $@ $< $(LIBBIO) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/gemm_bench: bench/kernels/gemm_bench.c $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -o $@ $< $(LIBBIO) $(LDFLAGS) $(LDLIBS)

.PHONY: bench-kernels
bench: bench-kernels
bench-kernels: $(BUILD)/bench/layer_bench $(BUILD)/bench/gemm_bench
	bench/kernels/run.sh $(BUILD)
