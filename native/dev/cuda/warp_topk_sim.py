# A lane-by-lane simulation of WarpTopK (native/src/cuda/warp_topk.cuh) in plain Python: checks
# on any machine, GPU or not, that ballot-and-shuffle insertion keeps the exact top-k (ties:
# lower index first) of random streams with many ties. Run: python3 native/dev/cuda/warp_topk_sim.py
import random, math
INF = math.inf
IMAX = 2**31 - 1
def better(a, ia, b, ib): return a > b or (a == b and ia < ib)
class Warp:
    def __init__(self): self.s = [-INF]*32; self.i = [IMAX]*32
    def threshold(self, k): return self.s[k-1], self.i[k-1]
    def insert(self, s, i, k):
        ahead = [lane < k and better(self.s[lane], self.i[lane], s, i) for lane in range(32)]
        pos = sum(ahead)
        up_s = [self.s[max(l-1,0)] if l > 0 else self.s[0] for l in range(32)]
        up_i = [self.i[max(l-1,0)] if l > 0 else self.i[0] for l in range(32)]
        if pos >= k: return
        ns, ni = self.s[:], self.i[:]
        for lane in range(32):
            if lane > pos and lane < k: ns[lane], ni[lane] = up_s[lane], up_i[lane]
            elif lane == pos: ns[lane], ni[lane] = s, i
        self.s, self.i = ns, ni
    def offer(self, s, i, k):  # s, i: per-lane lists
        ts, ti = self.threshold(k)
        pending = [better(s[l], i[l], ts, ti) for l in range(32)]
        while any(pending):
            src = pending.index(True)
            self.insert(s[src], i[src], k)
            ts, ti = self.threshold(k)
            pending[src] = False
            pending = [pending[l] and better(s[l], i[l], ts, ti) for l in range(32)]
random.seed(1)
for trial in range(300):
    k = random.choice([1, 2, 7, 16, 31, 32])
    n = random.randint(k, 700)
    vals = [random.choice([random.gauss(0,1), float(random.randint(0,5))]) for _ in range(n)]  # many ties
    w = Warp()
    for base in range(0, n, 32):
        s = [vals[base+l] if base+l < n else -INF for l in range(32)]
        i = [base+l if base+l < n else IMAX for l in range(32)]
        w.offer(s, i, k)
    want = sorted(range(n), key=lambda x: (-vals[x], x))[:k]
    got = w.i[:k]
    assert got == want, (trial, k, n, got, want)
    # merge of chunk lists, as merge_chunks does
print("warp top-k simulation: exact on 300 random streams with ties")
