// tests/prog/cxxleak.cc — a C++ program with leaks of known sites and sizes, for the call-site
// report (tests/e2e/cxxleak.sh): containers, make_shared on adjacent lines, strings, a thread,
// a call through a function pointer, anonymous mappings, and (cxxleak LIBDIR) a C library's inlined helper. It
// prints one line per leaking place, "EXPECT FUNCTION LINE BYTES BLOCKS": the function and line
// of this file a report must name, and the bytes the code asked for there (not the allocator's
// rounded-up sizes). Everything else it allocates is freed before exit. Never prints the
// sizes of anything it did not ask for itself.
#include <dlfcn.h>
#include <sys/mman.h>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#define NOINLINE __attribute__((noinline))

struct A {
    long v[16];
};

static void expect(const char *func, int line, unsigned long long bytes, unsigned long long n)
{
    std::printf("EXPECT %s %d %llu %llu\n", func, line, bytes, n);
}

// The compiler may drop an allocation whose pointer nobody reads: let each one escape.
static void escape(void *p) { asm volatile("" : : "g"(p) : "memory"); }

// A vector's object and its buffer: two allocations on one line.
static std::vector<long> *kept_vec;
NOINLINE static void leak_vector()
{
    kept_vec = new std::vector<long>(1000); int line = __LINE__;
    escape(kept_vec);
    expect("leak_vector()", line, sizeof(std::vector<long>) + 1000 * sizeof(long), 2);
}

// A map's nodes: each insertion allocates one node; its string is short (no buffer of its own).
static std::map<int, std::string> *kept_map;
NOINLINE static void leak_map()
{
    kept_map = new std::map<int, std::string>; int l1 = __LINE__;
    int l2 = 0;
    for (int i = 0; i < 100; i++) {
        kept_map->emplace(i, "s"); l2 = __LINE__;
    }
    escape(kept_map);
    expect("leak_map()", l1, sizeof(std::map<int, std::string>), 1);
    expect("leak_map()", l2,
           100 * sizeof(std::_Rb_tree_node<std::pair<const int, std::string>>), 100);
}

// make_shared on adjacent lines: two sites, told apart by their lines. The shared_ptrs live
// in storage that is never destroyed, so their control blocks (object included) leak.
alignas(std::shared_ptr<A>) static char hold1[sizeof(std::shared_ptr<A>)];
alignas(std::shared_ptr<A>) static char hold2[sizeof(std::shared_ptr<A>)];
NOINLINE static void leak_shared()
{
    new (hold1) std::shared_ptr<A>(std::make_shared<A>()); int l1 = __LINE__;
    new (hold2) std::shared_ptr<A>(std::make_shared<A>()); int l2 = __LINE__;
    using block = std::_Sp_counted_ptr_inplace<A, std::allocator<void>,
                                               __gnu_cxx::__default_lock_policy>;
    expect("leak_shared()", l1, sizeof(block), 1);
    expect("leak_shared()", l2, sizeof(block), 1);
}

// Strings of 40 characters: the object and its buffer (41 bytes asked for, 48 usable).
static std::string *kept_str[1000];
NOINLINE static void leak_strings()
{
    int line = 0;
    for (int i = 0; i < 1000; i++) {
        kept_str[i] = new std::string(40, 'x'); line = __LINE__;
        escape(kept_str[i]);
    }
    expect("leak_strings()", line, 1000 * (sizeof(std::string) + 41), 2000);
}

// On a thread of its own.
static void *kept_thread[3];
NOINLINE static void leak_in_thread()
{
    int line = 0;
    for (int i = 0; i < 3; i++) {
        kept_thread[i] = std::malloc(5000); line = __LINE__;
        escape(kept_thread[i]);
    }
    expect("leak_in_thread()", line, 3 * 5000, 3);
}

// Called through a function pointer.
static void *kept_fp[10];
NOINLINE static void leak_via_pointer(int i)
{
    kept_fp[i] = std::malloc(700); escape(kept_fp[i]);
    if (i == 0)
        expect("leak_via_pointer(int)", __LINE__ - 2, 10 * 700, 10);
}
static void (*volatile fp)(int) = leak_via_pointer;

// Mappings of its own: three of 1 MiB, one unmapped again; recorded by call site too.
NOINLINE static void leak_mappings()
{
    void *m[3];
    int line = 0;
    for (int i = 0; i < 3; i++) {
        m[i] = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); line = __LINE__;
        escape(m[i]);
    }
    munmap(m[1], 1 << 20);
    expect("leak_mappings()", line, 2 << 20, 2);
}

// Freed: must not show as a leak.
NOINLINE static void churn()
{
    for (int i = 0; i < 1000; i++) {
        std::vector<int> v(i + 1);
        escape(v.data());
    }
}

int main(int argc, char **argv)
{
    leak_vector();
    leak_map();
    leak_shared();
    leak_strings();
    std::thread t(leak_in_thread);
    t.join();
    for (int i = 0; i < 10; i++)
        fp(i);
    churn();
    leak_mappings();
    if (argc > 1) {
        // The library's helper, inlined into its exported function (never dlclosed).
        std::string path = std::string(argv[1]) + "/libinlhelp.so";
        void *h = dlopen(path.c_str(), RTLD_NOW);
        auto outer = h ? (void *(*)(size_t))dlsym(h, "inlhelp_outer") : nullptr;
        if (!outer) {
            std::fprintf(stderr, "cxxleak: %s\n", dlerror());
            return 1;
        }
        for (int i = 0; i < 4; i++)
            escape(outer(3000));
        std::printf("EXPECT-LIB inlhelp_outer %d %d\n", 3000 * 4, 4);
    }
    std::fflush(stdout);
    return 0;
}
