#!/usr/bin/env python3
# tests/e2e/imports.py — the import graph of the preload's modules, as the linker sees it:
# one node per preload/*.o, an edge A -> B when A's object refers to a symbol B's object
# defines (nm). The interposed names count too: a call from log.c to close() binds to
# hooks.c's close at run time, so it is an edge to hooks. Inline functions of internal.h
# count where the compiler put them. Prints the edges, then every circle found (one line
# each) and exits 1 if there is one; exits 2 when the objects cannot be read.
#   imports.py BUILD_DIR
import glob, os, subprocess, sys

objs = sorted(glob.glob(os.path.join(sys.argv[1], "preload", "*.o")))
if len(objs) < 5:
    print("imports.py: no preload objects under %s/preload" % sys.argv[1])
    sys.exit(2)
defs, uses = {}, {}
for o in objs:
    m = os.path.basename(o)[:-2]
    out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
    d, u = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TDBRVWGS" and f[1].isupper():
            d.add(f[2])
        elif len(f) == 2 and f[0] == "U":
            u.add(f[1])
    defs[m], uses[m] = d, u
owner = {s: m for m, ds in defs.items() for s in ds}
edges = {m: {} for m in defs}
for m in defs:
    for s in sorted(uses[m]):
        o = owner.get(s)
        if o and o != m:
            edges[m].setdefault(o, []).append(s)
for m in sorted(edges):
    for o in sorted(edges[m]):
        print("edge %s -> %s (%s)" % (m, o, ", ".join(edges[m][o][:4])))

# Every elementary circle would be too many to print; one per strongly connected component
# (Tarjan) names the modules caught in it, and one path through them shows the way round.
index, low, onstack, stack, comps = {}, {}, set(), [], []
def strong(v, counter=[0]):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); onstack.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in onstack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); onstack.discard(w); c.append(w)
            if w == v:
                break
        if len(c) > 1:
            comps.append(sorted(c))
sys.setrecursionlimit(10000)
for v in sorted(edges):
    if v not in index:
        strong(v)

def circle(comp):
    # A shortest way from comp[0] back to itself inside the component (breadth first).
    start, inside = comp[0], set(comp)
    prev, todo = {start: None}, [start]
    while todo:
        nxt = []
        for v in todo:
            for w in sorted(edges[v]):
                if w == start:
                    path = [w, v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path))
                if w in inside and w not in prev:
                    prev[w] = v; nxt.append(w)
        todo = nxt
    return comp

for c in comps:
    print("circle: %s  (modules caught: %s)" % (" -> ".join(circle(c)), " ".join(c)))
sys.exit(1 if comps else 0)
