# Prints one row of the `make compare` table from a bio-eval report.yaml: the run name r and the
# figures of section sec (fused, iris or fingerprint): accuracy, EER, FNMR at FMR 1%, rank-1/5.
/^[^ #]/ { s = $1; sub(/:$/, "", s); sub2 = "" }
/^  [a-z]/ && s == sec { sub2 = $1; sub(/:$/, "", sub2) }
s == sec && $1 == "accuracy:" { acc = $2 }
s == sec && $1 == "eer:" { eer = $2 }
s == sec && $1 == "fnmr_at_fmr_1pct:" { f1 = $2 }
s == sec && $1 == "rank1:" { r1 = $2 }
s == sec && $1 == "rank5:" { r5 = $2 }
function pct(x) { return x == "" || x == "null" ? "-" : sprintf("%.2f%%", 100 * x) }
END { printf "%-12s %9s %9s %9s %9s %9s\n", r, pct(acc), pct(eer), pct(f1), pct(r1), pct(r5) }
