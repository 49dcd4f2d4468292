/* Optimizers and learning-rate schedules with torch.optim's semantics (PyTorch 1.13, single-tensor
 * code paths): SGD (momentum, dampening 0, Nesterov), Adam and AdamW (no amsgrad), L2 weight
 * decay (AdamW: decoupled), StepLR, CosineAnnealingLR, ReduceLROnPlateau (relative threshold
 * 1e-4, no cooldown), gradient-norm clipping (clip_grad_norm_). They work on flat blocks:
 * the model's params, grads and optimizer moments. */
#ifndef BIO_OPTIM_H
#define BIO_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/nn.h"

enum bio_optim_kind { BIO_OPTIM_SGD, BIO_OPTIM_ADAM, BIO_OPTIM_ADAMW };

struct bio_optim {
	enum bio_optim_kind kind;
	double lr;            /* current learning rate (set by the scheduler) */
	double momentum;      /* SGD */
	int nesterov;         /* SGD */
	double weight_decay;
	double beta1, beta2, eps;
	int64_t step;         /* optimizer steps taken */
	float *m, *v;         /* moments, n floats each (SGD uses m as momentum buffer); borrowed */
	size_t n;
	/* [skip[2i], skip[2i + 1]) for i < n_skip: parameters whose step is fused into backward
	 * (bio_model_fuse_adam), left alone by bio_optim_step; borrowed */
	const size_t *skip;
	int n_skip;
};

struct bio_adam;
/* The Adam/AdamW constants of step `step` (o->step + 1 for the coming one) at o->lr. */
void bio_optim_adam_consts(const struct bio_optim *o, int64_t step, struct bio_adam *c);

/* Reads training.optimizer, lr, momentum, nesterov, weight_decay, beta1, beta2, eps. */
int bio_optim_from_config(struct bio_optim *o, const struct bio_config *cfg, struct bio_error *err);
const char *bio_optim_name(enum bio_optim_kind kind);
/* Parses "sgd" | "adam" | "adamw"; 0 or -1. */
int bio_optim_parse(enum bio_optim_kind *out, const char *name);
/* One update of params[0..n) from grads (borrowed), but for o's skip ranges; uses and advances
 * o->m, o->v, o->step. */
void bio_optim_step(struct bio_optim *o, float *params, const float *grads, size_t n);
/* Same, with the elementwise update spread over pool's threads (may be NULL). */
void bio_optim_step_pool(struct bio_optim *o, float *params, const float *grads, size_t n,
			 struct bio_nn_pool *pool);

/* Scales grads so their global 2-norm is at most max_norm (torch.nn.utils.clip_grad_norm_:
 * coefficient max_norm / (norm + 1e-6) when below 1). Returns the norm before clipping. */
double bio_clip_grad_norm(float *grads, size_t n, double max_norm);

enum bio_sched_kind { BIO_SCHED_NONE, BIO_SCHED_STEP, BIO_SCHED_COSINE, BIO_SCHED_PLATEAU };

struct bio_sched {
	enum bio_sched_kind kind;
	double base_lr, lr;
	int64_t epoch;         /* epochs completed (torch's last_epoch) */
	int64_t step_size;     /* step */
	double gamma;          /* step */
	int64_t t_max;         /* cosine: epochs in the run */
	double min_lr;         /* cosine eta_min; plateau min_lr */
	int plateau_max;       /* plateau: 1 when the metric is maximised (accuracy) */
	double factor;         /* plateau */
	int64_t patience;      /* plateau */
	double best;           /* plateau: best metric so far */
	int64_t num_bad;       /* plateau: epochs without improvement */
};

/* Reads training.scheduler, lr, step_size, gamma, min_lr, patience, factor; t_max is the
 * number of epochs; the plateau mode follows training.early_stopping.metric. */
int bio_sched_from_config(struct bio_sched *s, const struct bio_config *cfg, int64_t t_max,
			  struct bio_error *err);
const char *bio_sched_name(enum bio_sched_kind kind);
/* Ends an epoch (torch's scheduler.step(), with the validation metric for plateau) and returns
 * the learning rate for the next epoch. */
double bio_sched_epoch_end(struct bio_sched *s, double metric);

#endif
