# jitbt: a dynamic binary translator for x86-64 Linux programs.
#   make run     set up everything (virtual environment, guest programs, the interpreter's handler
#                library) and run a guest under jitbt
#   make test    run the test suite
#   make guests  build the guest programs
#   make native  build jitbt's native helpers (translator/native.c)
#   make bench   run the benchmark suite: native vs jitbt vs qemu-x86_64 (minutes; not part of test)
#   make clean   remove what the build made
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the build and the tests need (busybox-static, not Debian's dynamic busybox)
DEBS   := gcc make binutils musl-tools qemu-user busybox-static

.PHONY: run test guests deps venv clean bench prepare prepare-list native

run: venv guests native prepare
	$(BIN)/jitbt run guests/build/hello
	$(BIN)/jitbt run --stats guests/build/crc32-O2

test: venv guests native
	$(BIN)/python -m pytest -q -n 2 tests

bench: venv deps native
	$(BIN)/pip install -q -e '.[bench]'
	$(MAKE) -s -C bench
	$(BIN)/python bench/run.py

guests: deps
	$(MAKE) -s -C guests

# The interpreter's handlers (translator/handlers.py), compiled once for every instruction shape
# of the conformance forms and of these programs (glibc and musl, static and static-pie, -O3
# vector code, busybox), each memory operand in every addressing form, into
# $XDG_CACHE_HOME/jitbt/handlers: one library for datapath, one for the other levels (about
# 25 s). A shape met later is built then, on a second thread. The tests prepare their own cache
# folder the same way.
PREPARE := guests/build/libcmix-glibc guests/build/libcmix-glibc-pie guests/build/libcmix-musl \
           guests/build/numeric-glibc-O3 guests/build/numeric-musl-O3 /bin/busybox
prepare: venv guests
	$(BIN)/jitbt prepare $(PREPARE)

prepare-list:
	@echo $(PREPARE)

# jitbt's native helpers (translator/native.c): the interpreter's decoding (capstone's decoding,
# records and shape keys of a block in one call; a cold start decodes 3-4 times faster) and the
# relocations of the object code every run loads. Only gcc is needed, not capstone's or
# Python's headers; without the library jitbt does the same in Python.
NATIVE := translator/libjitbt_native.so
native: $(NATIVE)

$(NATIVE): translator/native.c | deps
	gcc -O2 -Wall -shared -fPIC -o $@ $<

# Install missing Debian packages (CI machines start with only what this Makefile installs).
deps:
	@missing=""; for pkg in $(DEBS); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; fi

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	$(MAKE) -s -C guests clean
	$(MAKE) -s -C bench clean
	rm -rf $(VENV) *.egg-info .pytest_cache $(NATIVE)
