/* The Adam / AdamW update of elements [0, n) (lib/optim.c): included by each ISA's file after
 * it defines VW, vec_t, VSET1, VLOADU, VSTOREU, VADD, and
 *
 *   VMUL(a, b), VDIV(a, b), VSQRT(a)   lane-wise, correctly rounded (IEEE), as the C operators
 *   ADAM_NAME                          this path's function
 *
 * Every element goes through the operations of the portable loop in optim.c, one rounding each
 * (a multiply then an add, never an FMA), so every path and every split of the elements gives
 * the same bits; the last n % VW elements take that loop's scalar form. */
#include <math.h>
#include <stddef.h>

#include "bio/kernels.h"

void ADAM_NAME(float *p, const float *g, float *m, float *v, size_t n, const struct bio_adam *c);
void ADAM_NAME(float *p, const float *g, float *m, float *v, size_t n, const struct bio_adam *c)
{
	const vec_t decay = VSET1(c->decay), wd = VSET1(c->wd), b1 = VSET1(c->b1);
	const vec_t one_b1 = VSET1(c->one_b1), b2 = VSET1(c->b2), one_b2 = VSET1(c->one_b2);
	const vec_t bc2s = VSET1(c->bc2s), eps = VSET1(c->eps), neg_step = VSET1(c->neg_step);
	const int adamw = c->adamw, l2 = !adamw && c->wd != 0.0f;
	size_t i = 0;
	for (; i + VW <= n; i += VW) {
		vec_t gi = VLOADU(g + i), pi = VLOADU(p + i);
		if (adamw)
			pi = VMUL(pi, decay);
		else if (l2)
			gi = VADD(gi, VMUL(wd, pi));
		vec_t mi = VADD(VMUL(VLOADU(m + i), b1), VMUL(one_b1, gi));
		vec_t vi = VADD(VMUL(VLOADU(v + i), b2), VMUL(one_b2, VMUL(gi, gi)));
		VSTOREU(m + i, mi);
		VSTOREU(v + i, vi);
		vec_t denom = VADD(VDIV(VSQRT(vi), bc2s), eps);
		VSTOREU(p + i, VADD(pi, VMUL(neg_step, VDIV(mi, denom))));
	}
	for (; i < n; i++)
		bio_adam_one(p + i, g[i], m + i, v + i, c);
}
