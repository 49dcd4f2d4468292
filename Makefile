# biopipe: one non-recursive GNU Makefile. `make` builds libbio and the programs into build/,
# `make test` installs missing Debian packages (as root), builds and runs every test,
# `make asan` reruns the tests under ASan/UBSan, `make demo` runs the whole pipeline.

PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2 -g
BUILD ?= build
PYTHON ?= /usr/bin/python3
WARN = -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wvla
ifdef WERROR
WARN += -Werror
endif
# Debian 12's msgpack-c 4 is `msgpack`; newer releases call it `msgpack-c`.
MSGPACK_PC ?= $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS = libpng yaml-0.1 openblas $(MSGPACK_PC) libtiff-4 libjpeg libcurl jansson
# Evaluated once, when a recipe first needs them (not when the Makefile is read): on a new machine
# the packages that provide the .pc files are installed by `deps`, after parsing.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $$(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(shell pkg-config --libs $$(PKGS) 2>/dev/null))$(PKG_LIBS)
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DBIO_VERSION='"$(VERSION)"'
LDLIBS = $(PKG_LIBS) -lpthread -lm
VERSION = 0.1.0

# Debian packages: to build and run, and (additionally) to test.
DEB_BUILD = gcc make pkg-config libpng-dev libmsgpack-dev libopenblas-dev libyaml-dev \
            libtiff-dev libjpeg-dev libcurl4-openssl-dev libjansson-dev parallel gnuplot-nox
DEB_TEST = bats bats-assert bats-support python3 python3-numpy python3-pil python3-msgpack python3-yaml groff \
           python3-torch python3-sklearn time openmpi-bin libopenmpi-dev
DEB_FUZZ = clang libclang-rt-14-dev
# The multi-host test (tests/tools/ssh.bats) runs two real sshd on 127.0.0.1, and the Slurm test
# (tests/tools/slurm.bats) a one-node Slurm (munged, slurmctld, slurmd, srun) on 127.0.0.1; not
# part of deps-test because installing these on a real machine also starts system daemons.
DEB_SSH = openssh-server rsync munge slurmctld slurmd slurm-client

LIB_SRC = $(sort $(wildcard lib/*.c lib/kernels/*.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBBIO = $(BUILD)/libbio.a
TOOL_SRC = $(sort $(wildcard tools/bio-*.c))
TOOLS = $(TOOL_SRC:tools/%.c=$(BUILD)/bin/%)
TOOL_OBJ = $(BUILD)/tools/tool.o $(BUILD)/gen/builtin_configs.o
BUILTIN_CONFIGS = configs/base.yaml $(sort $(wildcard configs/env/*.yaml))
UNIT_SRC = $(sort $(wildcard tests/lib/test_*.c))
UNITS = $(UNIT_SRC:tests/lib/%.c=$(BUILD)/tests/%)
# Small programs the bats tests drive (e.g. decode one image and dump it), linked with libbio.
HELPER_SRC = $(sort $(wildcard tests/helpers/*.c))
HELPERS = $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/helpers/%)
FUZZ_SRC = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REGRESS = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz-regress/%)
BATS = $(sort $(wildcard tests/tools/*.bats))

.PHONY: all deps deps-test deps-ssh test unit bats fuzz-regress asan fuzz demo install clean bench fresh-check

all: $(TOOLS) $(TOOLS:$(BUILD)/bin/%=$(BUILD)/stamp/%)

# Keep every intermediate file (tool objects, generated sources): a second `make` rebuilds nothing.
.SECONDARY:

# The stages of the make DAG (pipelines/*.mk) depend on a tool's stamp, not its binary: the stamp
# holds the binary's SHA-256 and is rewritten only when that changes, so relinking the same program
# (a rebuild, `make test`, a change in libbio it does not link) re-runs no stage, while a change of
# behaviour re-runs what it affects. The link recipe updates the stamp; the stamp's own rule only
# makes a missing one, and depends on the binary order-only, so `make -q` stays true after a
# relink that changed nothing.
stamp_update = mkdir -p $(BUILD)/stamp && sha256sum < $(1) > $(2).tmp && \
	if cmp -s $(2).tmp $(2); then rm -f $(2).tmp; else mv $(2).tmp $(2); fi
$(BUILD)/stamp/%: | $(BUILD)/bin/%
	@$(call stamp_update,$(BUILD)/bin/$*,$@)

$(BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -MMD -MP $(DEP_TARGETS) -c -o $@ $<

# A dependency file names its object both relative and absolute: tests run make with an absolute
# BUILD (BIO_BUILD), and a .d written that way must still tie the headers to the relative
# target (else a header change leaves a stale object behind: make asan then linked bio-train.o
# built against an older struct bio_model_spec).
DEP_TARGETS = -MT '$(abspath $@)' -MT '$(patsubst $(CURDIR)/%,%,$(abspath $@))'

$(LIBBIO): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -MMD -MP $(DEP_TARGETS) -c -o $@ $<

$(BUILD)/gen/builtin_configs.c: scripts/embed.sh $(BUILTIN_CONFIGS)
	@mkdir -p $(@D)
	sh scripts/embed.sh $(BUILTIN_CONFIGS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/builtin_configs.o: $(BUILD)/gen/builtin_configs.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/bin/%: $(BUILD)/tools/%.o $(TOOL_OBJ) $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	@$(call stamp_update,$@,$(BUILD)/stamp/$*)

$(BUILD)/tests/%: tests/lib/%.c tests/lib/test.h $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -Itests/lib -o $@ $< $(LIBBIO) $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/helpers/%: tests/helpers/%.c $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -MMD -MP $(DEP_TARGETS) -o $@ $< $(LIBBIO) $(LDFLAGS) $(LDLIBS)

# Fuzz harnesses built with a plain main() that replays files: corpora run as regression tests.
$(BUILD)/fuzz-regress/%: tests/fuzz/%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -o $@ $< tests/fuzz/replay.c $(LIBBIO) $(LDFLAGS) $(LDLIBS)

-include $(LIB_OBJ:.o=.d) $(wildcard $(BUILD)/tools/*.d $(BUILD)/tests/helpers/*.d)

# ---- set-up: install what is missing (as root), else say what to install ----
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else echo "missing Debian packages; install them with: sudo apt-get install -y" $$missing >&2; exit 2; fi; \
	fi
endef

deps:
	$(call install_missing,$(DEB_BUILD))

# Not root: before any build output, one line with the exact install command, and make's exit 2.
ifeq ($(MAKELEVEL),0)
ifneq ($(shell id -u),0)
ifneq ($(filter-out clean fresh-check,$(or $(MAKECMDGOALS),all)),)
NEED_DEB = $(DEB_BUILD) $(if $(filter test asan deps-test unit bats fuzz-regress,$(MAKECMDGOALS)),$(DEB_TEST))
MISSING_DEB := $(shell command -v dpkg-query >/dev/null 2>&1 && for p in $(NEED_DEB); do \
  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done)
ifneq ($(strip $(MISSING_DEB)),)
$(error missing Debian packages; install them with: sudo apt-get install -y $(strip $(MISSING_DEB)))
endif
endif
endif
endif

# bio-train's ranks (tools/dist.c) are built with Open MPI when its development files are
# installed. Every make asks pkg-config; $(BUILD)/gen/mpi.flags holds the answer (compile flags,
# link flags) and is rewritten only when it changes, so installing MPI rebuilds bio-train and
# nothing else.
MPI_PC = ompi-c
MPI_FLAGS_FILE = $(BUILD)/gen/mpi.flags
ifeq ($(filter clean,$(MAKECMDGOALS)),)
MPI_CHECK := $(shell f=$(MPI_FLAGS_FILE); mkdir -p $(BUILD)/gen && \
  if pkg-config --exists $(MPI_PC) 2>/dev/null; then \
    printf '%s\n%s\n' "-DBIO_HAVE_MPI $$(pkg-config --cflags $(MPI_PC))" "$$(pkg-config --libs $(MPI_PC))"; \
  else printf '\n\n'; fi > $$f.tmp && \
  if cmp -s $$f.tmp $$f; then rm -f $$f.tmp; else mv $$f.tmp $$f; fi)
MPI_CFLAGS := $(shell sed -n 1p $(MPI_FLAGS_FILE) 2>/dev/null)
MPI_LIBS := $(shell sed -n 2p $(MPI_FLAGS_FILE) 2>/dev/null)
endif

$(BUILD)/tools/dist.o: tools/dist.c $(MPI_FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(MPI_CFLAGS) $(WARN) $(CFLAGS) -MMD -MP $(DEP_TARGETS) -c -o $@ $<

$(BUILD)/bin/bio-train: $(BUILD)/tools/bio-train.o $(BUILD)/tools/dist.o $(TOOL_OBJ) $(LIBBIO)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MPI_LIBS) $(LDLIBS)
	@$(call stamp_update,$@,$(BUILD)/stamp/bio-train)

# bio-train as a machine without MPI builds it: the tests check it refuses to be a rank.
$(BUILD)/tests/dist-nompi.o: tools/dist.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/bio-train-nompi: $(BUILD)/tools/bio-train.o $(BUILD)/tests/dist-nompi.o $(TOOL_OBJ) $(LIBBIO)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps-test: deps
	$(call install_missing,$(DEB_TEST))

deps-ssh:
	$(call install_missing,$(DEB_SSH))

# ---- tests ----
test: deps-test
	$(MAKE) all
	$(MAKE) unit fuzz-regress bats

unit: $(UNITS)
	@set -e; for t in $(UNITS); do echo "== $$t"; $$t; done

fuzz-regress: $(FUZZ_REGRESS)
	@set -e; for f in $(FUZZ_REGRESS); do n=$$(basename $$f); n=$${n#fuzz_}; \
	  dirs=$$(ls -d tests/fuzz/corpus/$$n tests/bad/$$n 2>/dev/null || true); \
	  echo "== $$f $$dirs"; $$f $$dirs; done

bats: $(TOOLS) $(HELPERS) $(BUILD)/tests/bio-train-nompi
	PATH="$(abspath $(BUILD))/bin:$$PATH" BIO_BUILD="$(abspath $(BUILD))" PYTHON=$(PYTHON) \
	  bats --print-output-on-failure $(BATS)

# ASan/UBSan: a separate build tree, every test rerun under the sanitizers.
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
asan: deps-test
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
	  BIO_ASAN=1 all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
	  BIO_ASAN=1 unit fuzz-regress bats

# libFuzzer: each harness for FUZZ_SECONDS (default 60) with clang.
FUZZ_SECONDS ?= 60
fuzz:
	$(call install_missing,$(DEB_FUZZ))
	@set -e; mkdir -p $(BUILD)/fuzz; for src in $(FUZZ_SRC); do n=$$(basename $$src .c); \
	  clang $(CPPFLAGS) $(PKG_CFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined \
	    -o $(BUILD)/fuzz/$$n $$src $(LIB_SRC) $(PKG_LIBS) -lpthread -lm; \
	  c=$${n#fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$c; \
	  $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $(BUILD)/fuzz/corpus-$$c \
	    $$(ls -d tests/fuzz/corpus/$$c tests/bad/$$c 2>/dev/null); done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7 \
	  $(DESTDIR)$(PREFIX)/share/biopipe
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard man/man1/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(wildcard man/man5/*.5) $(DESTDIR)$(PREFIX)/share/man/man5/
	-install -m 644 $(wildcard man/man7/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/
	cp -r configs $(DESTDIR)$(PREFIX)/share/biopipe/

clean:
	rm -rf build build-asan

-include $(sort $(wildcard pipelines/*.mk))

# The README's two commands on a pristine Debian 12 root (mmdebstrap + chroot, as root): see
# tests/fresh/run.sh. FRESH_FLAGS=--demo-only skips the fresh `make test`.
fresh-check:
	$(call install_missing,mmdebstrap git)
	bash tests/fresh/run.sh $(FRESH_FLAGS)
