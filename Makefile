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
# Each directory its own include path: the preload sees common/ and itself, the tools see
# common/ and themselves, so tools/ cannot include preload/internal.h (nor the reverse).
# The tests see everything they test.
PRELOAD_INC = -Iinclude -Icommon -Ipreload
TOOLS_INC = -Iinclude -Icommon -Itools
TEST_INC = -Iinclude -Icommon -Ipreload -Itools -Itests
ifneq ($(SANITIZE),)
SANFLAGS = -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
BASE_CFLAGS = $(STD) $(WARN) $(OPT) $(DEBUG) $(DEPS)
TOOLS_CFLAGS = $(BASE_CFLAGS) $(TOOLS_INC) $(CFLAGS)

# The preload: position independent, hidden by default (only the interposed symbols and the
# public API are exported), initial-exec TLS so a thread-local access never calls malloc,
# unwind tables (-fexceptions) so a C++ exception from operator new passes through our frames.
# No frame pointers: libunwind reads the DWARF tables, and the hooks save the push and pop.
PRELOAD_CFLAGS = $(BASE_CFLAGS) $(PRELOAD_INC) $(CFLAGS) -fPIC -fvisibility=hidden -ftls-model=initial-exec -fexceptions
PRELOAD_SRC = $(wildcard preload/*.c)
PRELOAD_OBJ = $(PRELOAD_SRC:%.c=$(BUILD)/%.o)
# The floor under both sides (common/): compiled once, as the preload needs it (PIC, hidden,
# initial-exec TLS), linked into libpreoom.so and, as libpreoom-common.a, into the tools.
COMMON_CFLAGS = $(BASE_CFLAGS) -Iinclude -Icommon $(CFLAGS) -fPIC -fvisibility=hidden -ftls-model=initial-exec -fexceptions
COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(COMMON_SRC:%.c=$(BUILD)/%.o)
# The preload but the file that defines malloc & co: linked into the unit tests only.
CORE_OBJ = $(filter-out $(BUILD)/preload/hooks.o,$(PRELOAD_OBJ))
PRELOAD_LIBS = -ldl -lpthread -lunwind

TOOL_MAINS = tools/preoom.c tools/preoomd.c
TOOL_LIB_SRC = $(filter-out $(TOOL_MAINS),$(wildcard tools/*.c))
TOOL_LIB_OBJ = $(TOOL_LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_BINS = $(patsubst tools/%.c,$(BUILD)/%,$(wildcard $(TOOL_MAINS)))
# libstdc++ for __cxa_demangle (symbolize.c): the C++ ABI's demangler, kept with the compiler;
# zlib for pprof's gzip'd profiles (pprof.c).
TOOL_LIBS = -lpthread -lm -ldw -lelf -lstdc++ -lz
# `preoom top` draws with ncurses (libncurses-dev); only the preoom command links it.
CURSES_LIBS ?= $(shell pkg-config --libs ncurses 2>/dev/null || echo -lncurses -ltinfo)

# Where install puts things (override any of them). The unit goes under PREFIX so that a
# /usr/local install stays out of the package manager's /usr/lib (systemd reads both). The
# environment file goes to SYSCONFDIR/default: SYSCONFDIR follows PREFIX (GNU's
# $(prefix)/etc, so `make install PREFIX=/tmp/x` writes nothing outside /tmp/x), except that
# PREFIX=/usr, a distribution's own, has /etc as Debian's services expect.
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/preoom
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
ifeq ($(PREFIX),/usr)
SYSCONFDIR ?= /etc
else
SYSCONFDIR ?= $(PREFIX)/etc
endif
# `preoom run` finds the library relative to its own executable (so a DESTDIR staging tree
# works as well as the installed one): LIBDIR as seen from BINDIR, built into cmd_run.o. A
# stamp file holds it, rewritten only when it changes, so that changing LIBDIR rebuilds.
LIBDIR_FROM_BINDIR = $(shell realpath -m --relative-to=$(BINDIR) $(LIBDIR))

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

$(BUILD)/common/%.o: common/%.c
	@mkdir -p $(dir $@)
	$(CC) $(COMMON_CFLAGS) $(SANFLAGS) -c $< -o $@

$(BUILD)/libpreoom-common.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libpreoom.so: $(PRELOAD_OBJ) $(COMMON_OBJ)
	$(CC) -shared -o $@ $(PRELOAD_OBJ) $(COMMON_OBJ) -Wl,-z,now -Wl,-z,nodelete $(PRELOAD_LIBS) $(LDFLAGS)
	@# A dynamic-TLS relocation would make a thread-local access call malloc: refuse it.
	@if readelf -rW $@ | grep -E 'TLSDESC|DTPMOD|DTPOFF' >/dev/null; then \
	    echo "$@: dynamic TLS relocation found (use initial-exec TLS)"; rm -f $@; exit 1; fi

$(BUILD)/libpreoom-core.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TOOLS_CFLAGS) $(SANFLAGS) -c $< -o $@

$(BUILD)/libpreoom-tools.a: $(TOOL_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libdir.stamp: FORCE
	@mkdir -p $(BUILD)
	@echo '$(LIBDIR_FROM_BINDIR)' | cmp -s - $@ || echo '$(LIBDIR_FROM_BINDIR)' >$@
$(BUILD)/tools/cmd_run.o: $(BUILD)/libdir.stamp
$(BUILD)/tools/cmd_run.o: TOOLS_CFLAGS += -DPREOOM_LIBDIR_FROM_BINDIR='"$(LIBDIR_FROM_BINDIR)"'
.PHONY: FORCE
FORCE:

# tools/preoom.c reaches its subcommands through weak references, and a weak reference does
# not pull a member out of an archive: `preoom` links the tools/cmd_*.o objects directly.
CMD_OBJ = $(patsubst tools/%.c,$(BUILD)/tools/%.o,$(wildcard tools/cmd_*.c))
$(BUILD)/preoom: $(CMD_OBJ)
$(BUILD)/preoom: TOOL_LIBS += $(CURSES_LIBS)

# The tools link the floor and their own archive: no preload object, no libunwind.
$(BUILD)/%: $(BUILD)/tools/%.o $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-common.a
	$(CC) $(SANFLAGS) -o $@ $< $(filter $(BUILD)/tools/cmd_%.o,$^) $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-common.a $(TOOL_LIBS) $(LDFLAGS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-core.a $(BUILD)/libpreoom-common.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(TEST_INC) $(CFLAGS) $(SANFLAGS) -o $@ $< $(BUILD)/libpreoom-tools.a $(BUILD)/libpreoom-core.a $(BUILD)/libpreoom-common.a $(TOOL_LIBS) $(PRELOAD_LIBS) $(LDFLAGS)

# The registry reader's fuzz target (libFuzzer, so clang only): registry.c is compiled into it
# to be instrumented; the rest comes from the floor's archive. tests/e2e/fuzz.sh runs it
# briefly.
FUZZ_CC ?= clang
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz: $(BUILD)/tests/fuzz/fuzz_registry
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c common/registry.c $(BUILD)/libpreoom-common.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(STD) $(WARN) -O1 -g -Iinclude -Icommon $(FUZZ_FLAGS) -o $@ $< common/registry.c $(BUILD)/libpreoom-common.a

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

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g'
$(BUILD)/preoom.pc: preoom.pc.in $(BUILD)/libdir.stamp
	@mkdir -p $(BUILD)
	$(PC_SED) $< >$@

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
	$(MAKE) all $(PROG_BINS) $(EXAMPLE_BINS) $(BUILD)/libpreoom-core.a $(BUILD)/libpreoom-common.a
	BUILD=$(BUILD) bench/run.sh

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
	$(PC_SED) preoom.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/preoom.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/preoom.pc
	install -m 0644 man/preoom.1 $(DESTDIR)$(MANDIR)/man1/preoom.1
	install -m 0644 man/preoom.3 $(DESTDIR)$(MANDIR)/man3/preoom.3
	install -m 0644 man/preoom.7 $(DESTDIR)$(MANDIR)/man7/preoom.7
	install -m 0644 man/preoomd.8 $(DESTDIR)$(MANDIR)/man8/preoomd.8
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/preoomd.service \
	    >$(DESTDIR)$(SYSTEMDUNITDIR)/preoomd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/preoomd.service
	sed -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/mariadb.service.d/preoom.conf \
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
