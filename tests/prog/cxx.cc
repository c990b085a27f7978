// tests/prog/cxx.cc — a C++ program under the preload: containers, strings, exceptions,
// aligned and nothrow new; includes preoom.h (it must compile as C++) and checks that
// new/delete are counted once each. Output is deterministic so runs compare.
//   cxx [nohuge]   nohuge: skip the over-large new[] (mimalloc aborts there, as it documents
//                  for a C build without a new handler, preloaded or not)
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "preoom.h"

struct alignas(256) Wide { char b[1024]; };

// The compiler may elide a new/delete pair whose memory nobody sees: let it escape.
static void escape(void *p) { asm volatile("" : : "g"(p) : "memory"); }

int main(int argc, char **argv)
{
    bool huge_new = !(argc > 1 && std::string(argv[1]) == "nohuge");
    preoom_stats_t a{}, b{};
    preoom_stats(&a);
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 20000; i++)
        m["key" + std::to_string(i % 5000)].push_back(i);
    long sum = 0;
    for (auto &kv : m)
        for (int v : kv.second)
            sum += v;
    auto *w = new Wide[64];
    auto *nt = new (std::nothrow) int[1000];
    std::unique_ptr<char[]> big(new char[8 << 20]);
    escape(w);
    escape(nt);
    escape(big.get());
    int caught = 0;
    if (huge_new) try {
        volatile size_t huge = ~(size_t)0 >> 2;
        char *p = new char[huge];
        escape(p);
        delete[] p;
    } catch (const std::bad_alloc &) {
        caught = 1;
    }
    preoom_stats(&b);
    long long grown = (long long)b.malloc_bytes - (long long)a.malloc_bytes;
    delete[] w;
    delete[] nt;
    big.reset();
    m.clear();
    preoom_stats_t c{};
    preoom_stats(&c);
    long long back = (long long)c.malloc_bytes - (long long)a.malloc_bytes;
    if (huge_new)
        std::printf("cxx: sum %ld, keys %zu, bad_alloc caught %d\n", sum, m.size(), caught);
    else
        std::printf("cxx: sum %ld, keys %zu, no over-large new\n", sum, m.size());
    if (preoom_api_version() != 0) {
        // 8 MiB array + 64 KiB of Wide + the map: counted once, so well under 2 x 8 MiB.
        std::printf("%s - new counted once (+%lld bytes)\n",
                    grown > (8 << 20) && grown < (12 << 20) ? "ok" : "not ok", grown);
        std::printf("%s - delete gives it back (%lld bytes left)\n",
                    back < (256 << 10) && back > -(256 << 10) ? "ok" : "not ok", back);
    }
    return caught || !huge_new ? 0 : 1;
}
