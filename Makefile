# preoom — build, test, benchmark and install.
#
#   make            build/libpreoom.so and the tools
#   make check      install missing packages, build, run every test (plus the unit tests
#                   again under ASan+UBSan)
#   make demo       the main job: a memory cgroup, preoomd and preloaded processes
#   make bench      benchmarks, side by side, as ratios of medians
#   make install    PREFIX=/usr/local DESTDIR=
#
# Variables: BUILD (products directory), SANITIZE=address|undefined|thread (tools and unit
# tests only: the preload interposes malloc, which clashes with the sanitizers' own), CFLAGS
# appended to ours.

BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
CXX ?= c++

# gnu11, not c11: the preload needs RTLD_NEXT, mremap and the futex/pidfd system calls.
STD = -std=gnu11 -D_GNU_SOURCE
WARN = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
OPT ?= -O2
DEBUG ?= -g
DEPS = -MMD -MP
INC = -Iinclude -Ipreload -Itools
ifneq ($(SANITIZE),)
SANFLAGS = -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
ALL_CFLAGS = $(STD) $(WARN) $(OPT) $(DEBUG) $(DEPS) $(INC) $(CFLAGS)

# The preload: position independent, hidden by default (only the interposed symbols and the
# public API are exported), initial-exec TLS so a thread-local access never calls malloc,
# unwind tables (-fexceptions) so a C++ exception from operator new passes through our frames.
# No frame pointers: libunwind reads the DWARF tables, and the hooks save the push and pop.
PRELOAD_CFLAGS = $(ALL_CFLAGS) -fPIC -fvisibility=hidden -ftls-model=initial-exec -fexceptions
PRELOAD_SRC = $(wildcard preload/*.c)
PRELOAD_OBJ = $(PRELOAD_SRC:%.c=$(BUILD)/%.o)
# Everything but the file that defines malloc & co: linked into the tools and unit tests.
CORE_OBJ = $(filter-out $(BUILD)/preload/hooks.o,$(PRELOAD_OBJ))
PRELOAD_LIBS = -ldl -lpthread -lunwind

TOOL_MAINS = tools/preoom.c tools/preoomd.c
TOOL_LIB_SRC = $(filter-out $(TOOL_MAINS),$(wildcard tools/*.c))
TOOL_LIB_OBJ = $(TOOL_LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_BINS = $(patsubst tools/%.c,$(BUILD)/%,$(wildcard $(TOOL_MAINS)))
# libstdc++ for __cxa_demangle (symbolize.c): the C++ ABI's demangler, kept with the compiler;
# zlib for pprof's gzip'd profiles (pprof.c).
TOOL_LIBS = -lpthread -lm -ldw -lelf -lstdc++ -lz

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRC:%.c=$(BUILD)/%)
PROG_C = $(wildcard tests/prog/*.c)
PROG_CXX = $(wildcard tests/prog/*.cc)
PROG_BINS = $(PROG_C:%.c=$(BUILD)/%) $(PROG_CXX:%.cc=$(BUILD)/%)
PROG_SHLIB_SRC = $(wildcard tests/prog/lib/*.c)
PROG_SHLIBS = $(patsubst tests/prog/lib/%.c,$(BUILD)/tests/prog/lib%.so,$(PROG_SHLIB_SRC))
EXAMPLE_SRC = $(wildcard examples/*.c)
EXAMPLE_BINS = $(EXAMPLE_SRC:%.c=$(BUILD)/%)

.PHONY: all check test test-build unit asan deps demo bench install uninstall clean fuzz
all: $(BUILD)/libpreoom.so $(TOOL_BINS) $(BUILD)/preoom.pc

# With SANITIZE the preload's objects are instrumented too: the unit tests link them
# directly, and that build's libpreoom.so is never preloaded into anything.
$(BUILD)/preload/%.o: preload/%.c
	@mkdir -p $(dir $@)
	$(CC) $(PRELOAD_CFLAGS) $(SANFLAGS) -c $< -o $@

$(BUILD)/libpreoom.so: $(PRELOAD_OBJ)
	$(CC) -shared -o $@ $(PRELOAD_OBJ) -Wl,-z,now -Wl,-z,nodelete $(PRELOAD_LIBS) $(LDFLAGS)
	@# A dynamic-TLS relocation would make a thread-local access call malloc: refuse it.
	@if readelf -rW $@ | grep -E 'TLSDESC|DTPMOD|DTPOFF' >/dev/null; then \
	    echo "$@: dynamic TLS relocation found (use initial-exec TLS)"; rm -f $@; exit 1; fi

$(BUILD)/libpreoom-core.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SANFLAGS) -c $< -o $@

$(BUILD)/libpreoom-tools.a: $(TOOL_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# tools/preoom.c reaches its subcommands through weak references, and a weak reference does
# not pull a member out of an archive: `preoom` links the tools/cmd_*.o objects directly.
CMD_OBJ = $(patsubst tools/%.c,$(BUILD)/tools/%.o,$(wildcard tools/cmd_*.c))
$(BUILD)/preoom: $(CMD_OBJ)

$(BUILD)/%: $(BUILD)/tools/%.o $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-core.a
	$(CC) $(SANFLAGS) -o $@ $< $(filter $(BUILD)/tools/cmd_%.o,$^) $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-core.a $(TOOL_LIBS) $(PRELOAD_LIBS) $(LDFLAGS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-core.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SANFLAGS) -Itests -o $@ $< $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-core.a $(TOOL_LIBS) $(PRELOAD_LIBS) $(LDFLAGS)

# The registry reader's fuzz target (libFuzzer, so clang only): registry.c is compiled into it
# to be instrumented; the rest comes from the core archive. tests/e2e/fuzz.sh runs it briefly.
FUZZ_CC ?= clang
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz: $(BUILD)/tests/fuzz/fuzz_registry
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c preload/registry.c $(BUILD)/libpreoom-core.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(STD) $(WARN) -O1 -g $(INC) $(FUZZ_FLAGS) -o $@ $< preload/registry.c $(BUILD)/libpreoom-core.a $(PRELOAD_LIBS)

# Test programs are the preload's hosts: plain builds, no sanitizer.
$(BUILD)/tests/prog/%: tests/prog/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(OPT) $(DEBUG) -Iinclude -fno-omit-frame-pointer -rdynamic -o $@ $< -ldl -lpthread

$(BUILD)/tests/prog/%: tests/prog/%.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=gnu++17 $(WARN:-Wstrict-prototypes=) $(OPT) $(DEBUG) -Iinclude -o $@ $< -lpthread

$(BUILD)/tests/prog/lib%.so: tests/prog/lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(OPT) $(DEBUG) -fPIC -shared -fno-omit-frame-pointer -o $@ $<

$(BUILD)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(OPT) $(DEBUG) -Iinclude -o $@ $< -lpthread

$(BUILD)/preoom.pc: preoom.pc.in
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|g' $< >$@

unit: $(UNIT_BINS)
test-build: all $(UNIT_BINS) $(PROG_BINS) $(PROG_SHLIBS) $(EXAMPLE_BINS)
test: test-build
	BUILD=$(BUILD) tests/run.sh $(FILTER)

deps:
	scripts/deps.sh build

# The whole suite, then the unit tests again under ASan+UBSan in a build tree of their own,
# ending with one line that adds both up (scripts/check.sh).
check:
	scripts/deps.sh check
	BUILD=$(BUILD) MAKE="$(MAKE)" scripts/check.sh

demo:
	scripts/deps.sh demo
	$(MAKE) all $(EXAMPLE_BINS) $(PROG_BINS)
	BUILD=$(BUILD) scripts/demo.sh

bench:
	scripts/deps.sh bench
	$(MAKE) all $(PROG_BINS) $(EXAMPLE_BINS)
	BUILD=$(BUILD) bench/run.sh

# Where install puts things (override any of them). The unit goes under PREFIX so that a
# /usr/local install stays out of the package manager's /usr/lib (systemd reads both); the
# environment file goes to /etc/default whatever PREFIX is, as Debian's services expect.
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/preoom
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALLED = $(LIBDIR)/libpreoom.so $(BINDIR)/preoom $(SBINDIR)/preoomd \
    $(INCLUDEDIR)/preoom.h $(INCLUDEDIR)/preoom/registry.h $(PKGCONFIGDIR)/preoom.pc \
    $(MANDIR)/man1/preoom.1 $(MANDIR)/man3/preoom.3 $(MANDIR)/man7/preoom.7 \
    $(MANDIR)/man8/preoomd.8 $(SYSTEMDUNITDIR)/preoomd.service \
    $(DOCDIR)/examples/mariadb.service.d/preoom.conf

# The pkg-config file, the unit and the drop-in are written with this install's paths (not
# those of $(BUILD)/preoom.pc, which may have been built for another PREFIX). An existing
# /etc/default/preoomd is the operator's: never overwritten.
install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
	    $(DESTDIR)$(INCLUDEDIR)/preoom $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/default \
	    $(DESTDIR)$(DOCDIR)/examples/mariadb.service.d
	install -m 0755 $(BUILD)/libpreoom.so $(DESTDIR)$(LIBDIR)/libpreoom.so
	install -m 0755 $(BUILD)/preoom $(DESTDIR)$(BINDIR)/preoom
	install -m 0755 $(BUILD)/preoomd $(DESTDIR)$(SBINDIR)/preoomd
	install -m 0644 include/preoom.h $(DESTDIR)$(INCLUDEDIR)/preoom.h
	install -m 0644 include/preoom/registry.h $(DESTDIR)$(INCLUDEDIR)/preoom/registry.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' preoom.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/preoom.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/preoom.pc
	install -m 0644 man/preoom.1 $(DESTDIR)$(MANDIR)/man1/preoom.1
	install -m 0644 man/preoom.3 $(DESTDIR)$(MANDIR)/man3/preoom.3
	install -m 0644 man/preoom.7 $(DESTDIR)$(MANDIR)/man7/preoom.7
	install -m 0644 man/preoomd.8 $(DESTDIR)$(MANDIR)/man8/preoomd.8
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' systemd/preoomd.service >$(DESTDIR)$(SYSTEMDUNITDIR)/preoomd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/preoomd.service
	sed -e 's|@LIBDIR@|$(LIBDIR)|g' systemd/mariadb.service.d/preoom.conf \
	    >$(DESTDIR)$(DOCDIR)/examples/mariadb.service.d/preoom.conf
	chmod 0644 $(DESTDIR)$(DOCDIR)/examples/mariadb.service.d/preoom.conf
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/default/preoomd ]; then \
	    install -m 0644 systemd/preoomd.default $(DESTDIR)$(SYSCONFDIR)/default/preoomd; fi

# Removes what install put there, except the operator's $(SYSCONFDIR)/default/preoomd.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rmdir $(DESTDIR)$(INCLUDEDIR)/preoom $(DESTDIR)$(DOCDIR)/examples/mariadb.service.d \
	    $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/preoomd ]; then \
	    echo "kept $(DESTDIR)$(SYSCONFDIR)/default/preoomd (your settings; remove it by hand)"; fi

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
