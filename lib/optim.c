/* Optimizers, gradient clipping and learning-rate schedules, following the arithmetic of
 * torch.optim 1.13's single-tensor implementations in float32 with the scalars rounded to float
 * as PyTorch's CPU kernels do, so parameter trajectories agree closely with PyTorch's. */
#include "bio/kernels.h"
#include "bio/optim.h"
#include "kernels/clones.h"

#include <math.h>
#include <string.h>

const char *bio_optim_name(enum bio_optim_kind kind)
{
	return kind == BIO_OPTIM_SGD ? "sgd" : kind == BIO_OPTIM_ADAM ? "adam" : "adamw";
}

int bio_optim_parse(enum bio_optim_kind *out, const char *name)
{
	if (strcmp(name, "sgd") == 0)
		*out = BIO_OPTIM_SGD;
	else if (strcmp(name, "adam") == 0)
		*out = BIO_OPTIM_ADAM;
	else if (strcmp(name, "adamw") == 0)
		*out = BIO_OPTIM_ADAMW;
	else
		return -1;
	return 0;
}

int bio_optim_from_config(struct bio_optim *o, const struct bio_config *cfg, struct bio_error *err)
{
	const char *s;
	int rc, b;
	memset(o, 0, sizeof *o);
	if ((rc = bio_config_get_str(cfg, "training.optimizer", &s, err)))
		return rc;
	if (bio_optim_parse(&o->kind, s))
		return bio_config_error(cfg, "training.optimizer", err, BIO_EINVAL,
					"expected sgd, adam or adamw, got '%s'", s);
	if ((rc = bio_config_get_double_range(cfg, "training.lr", 0.0, 1e3, &o->lr, err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.momentum", 0.0, 1.0, &o->momentum,
					       err)) ||
	    (rc = bio_config_get_bool(cfg, "training.nesterov", &b, err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.weight_decay", 0.0, 1e3,
					       &o->weight_decay, err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.beta1", 0.0, 0.999999, &o->beta1,
					       err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.beta2", 0.0, 0.999999999,
					       &o->beta2, err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.eps", 0.0, 1.0, &o->eps, err)))
		return rc;
	o->nesterov = b;
	if (o->nesterov && (o->kind != BIO_OPTIM_SGD || o->momentum <= 0.0))
		return bio_config_error(cfg, "training.nesterov", err, BIO_EINVAL,
					"Nesterov momentum needs optimizer sgd and momentum > 0");
	return 0;
}

struct step_job {
	const struct bio_optim *o;
	float *params;
	const float *grads;
};

/* Updates elements [b, e) for step o->step (already advanced). */
BIO_CLONES static void step_range(void *ctx, size_t b, size_t e, int t)
{
	const struct step_job *j = ctx;
	const struct bio_optim *o = j->o;
	float *params = j->params;
	const float *grads = j->grads;
	const float wd = (float)o->weight_decay, neg_lr = (float)-o->lr;
	(void)t;
	if (o->kind == BIO_OPTIM_SGD) {
		const float mom = (float)o->momentum;
		const int first = o->step == 1;
		for (size_t i = b; i < e; i++) {
			float d = grads[i];
			if (wd != 0.0f)
				d = d + wd * params[i];
			if (mom != 0.0f) {
				float buf = first ? d : o->m[i] * mom + d;
				o->m[i] = buf;
				d = o->nesterov ? d + mom * buf : buf;
			}
			params[i] = params[i] + neg_lr * d;
		}
		return;
	}
	struct bio_adam c;
	bio_optim_adam_consts(o, o->step, &c);
	/* [b, e) less the skip ranges */
	while (b < e) {
		size_t stop = e, next = e;
		for (int i = 0; i < o->n_skip; i++) {
			size_t lo = o->skip[2 * i], hi = o->skip[2 * i + 1];
			if (hi > b && lo < stop) {
				stop = lo > b ? lo : b;
				next = hi;
			}
		}
		if (stop > b)
			bio_adam(params + b, grads + b, o->m + b, o->v + b, stop - b, &c);
		b = stop == e ? e : next;
	}
}

void bio_optim_adam_consts(const struct bio_optim *o, int64_t step, struct bio_adam *c)
{
	const double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
	*c = (struct bio_adam){
		.decay = (float)(1.0 - o->lr * o->weight_decay),
		.wd = (float)o->weight_decay,
		.b1 = (float)o->beta1,
		.one_b1 = (float)(1.0 - o->beta1),
		.b2 = (float)o->beta2,
		.one_b2 = (float)(1.0 - o->beta2),
		.bc2s = (float)sqrt(bc2),
		.eps = (float)o->eps,
		.neg_step = (float)(-(o->lr / bc1)),
		.adamw = o->kind == BIO_OPTIM_ADAMW,
	};
}

void bio_optim_step_pool(struct bio_optim *o, float *params, const float *grads, size_t n,
			 struct bio_nn_pool *pool)
{
	BIO_ASSERT(n == o->n && o->m && (o->kind == BIO_OPTIM_SGD || o->v));
	o->step++;
	struct step_job j = {o, params, grads};
	bio_nn_parallel_for(pool, n, step_range, &j);
}

void bio_optim_step(struct bio_optim *o, float *params, const float *grads, size_t n)
{
	bio_optim_step_pool(o, params, grads, n, NULL);
}

double bio_clip_grad_norm(float *grads, size_t n, double max_norm)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)grads[i] * grads[i];
	double norm = sqrt(s);
	double coef = max_norm / (norm + 1e-6);
	if (coef < 1.0) {
		float c = (float)coef;
		for (size_t i = 0; i < n; i++)
			grads[i] *= c;
	}
	return norm;
}

/* ---- schedules ---- */

static const char *const sched_names[] = {[BIO_SCHED_NONE] = "none", [BIO_SCHED_STEP] = "step",
					  [BIO_SCHED_COSINE] = "cosine",
					  [BIO_SCHED_PLATEAU] = "plateau"};

const char *bio_sched_name(enum bio_sched_kind kind)
{
	return sched_names[kind];
}

int bio_sched_from_config(struct bio_sched *s, const struct bio_config *cfg, int64_t t_max,
			  struct bio_error *err)
{
	const char *metric;
	int rc;
	memset(s, 0, sizeof *s);
	int kind;
	if ((rc = bio_config_get_choice(cfg, "training.scheduler", sched_names, 4, &kind, err)))
		return rc;
	s->kind = (enum bio_sched_kind)kind;
	if ((rc = bio_config_get_double_range(cfg, "training.lr", 0.0, 1e3, &s->base_lr, err)) ||
	    (rc = bio_config_get_int_range(cfg, "training.step_size", 1, 1000000000,
					    &s->step_size, err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.gamma", 0.0, 1e3, &s->gamma,
					       err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.min_lr", 0.0, 1e3, &s->min_lr,
					       err)) ||
	    (rc = bio_config_get_int_range(cfg, "training.patience", 0, 1000000000,
					    &s->patience, err)) ||
	    (rc = bio_config_get_double_range(cfg, "training.factor", 0.0, 0.999999,
					       &s->factor, err)) ||
	    (rc = bio_config_get_str(cfg, "training.early_stopping.metric", &metric,
				      err)))
		return rc;
	s->plateau_max = strcmp(metric, "val_accuracy") == 0; /* (val_loss, val_eer: minimised) */
	s->best = s->plateau_max ? -INFINITY : INFINITY;
	s->t_max = t_max < 1 ? 1 : t_max;
	s->lr = s->base_lr;
	return 0;
}

double bio_sched_epoch_end(struct bio_sched *s, double metric)
{
	s->epoch++;
	switch (s->kind) {
	case BIO_SCHED_NONE:
		break;
	case BIO_SCHED_STEP:
		s->lr = s->base_lr * pow(s->gamma, (double)(s->epoch / s->step_size));
		break;
	case BIO_SCHED_COSINE:
		s->lr = s->min_lr + (s->base_lr - s->min_lr) *
					    (1.0 + cos(M_PI * (double)s->epoch / (double)s->t_max)) / 2.0;
		break;
	case BIO_SCHED_PLATEAU: {
		int better = s->plateau_max ? metric > s->best * (1.0 + 1e-4)
					    : metric < s->best * (1.0 - 1e-4);
		if (better) {
			s->best = metric;
			s->num_bad = 0;
		} else {
			s->num_bad++;
		}
		if (s->num_bad > s->patience) {
			double nl = s->lr * s->factor;
			if (nl < s->min_lr)
				nl = s->min_lr;
			if (s->lr - nl > 1e-8)
				s->lr = nl;
			s->num_bad = 0;
		}
		break;
	}
	}
	return s->lr;
}
