/* The two-branch identification model of DESIGN.md: per modality a branch of conv blocks
 * [conv kxk pad k/2 -> batch norm -> ReLU -> max pool 2] -> flatten -> linear -> ReLU -> dropout
 * -> linear (the embedding); a fusion module (concat | attention | weighted); a linear classifier
 * (softmax) or a cosine classifier (CosFace, ArcFace: the fused embedding and the class weights
 * L2-normalised).
 * Parameters, gradients, optimizer moments and activations each live in one block; every tensor
 * carries the name and layout of the equivalent PyTorch module's state_dict entry
 * ("iris.conv1.weight" [out,in,kh,kw], "iris.bn1.running_var", "fusion.score.weight",
 * "classifier.bias", ...). */
#ifndef BIO_MODEL_H
#define BIO_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bio/config.h"
#include "bio/error.h"
#include "bio/nn.h"
#include "bio/rng.h"

#define BIO_MODEL_MAX_BLOCKS 6
#define BIO_MODEL_MAX_MODS 4
#define BIO_MODEL_NAME_MAX 64
#define BIO_MODEL_CONV_CHUNK BIO_NN_PIECE /* samples per convolution call: the pieces of bio/nn.h */

struct bio_model_spec {
	int input_size;                        /* square input side */
	int n_blocks;                          /* conv blocks per branch */
	int channels[BIO_MODEL_MAX_BLOCKS];    /* output channels of each block */
	int kernel;                            /* conv kernel side (odd; padding kernel/2), 3 */
	int hidden, embedding;
	float dropout;
	enum bio_fusion_kind fusion;
	float attention_temperature;           /* attention fusion's T (see struct bio_fusion) */
	int n_mod;
	char modalities[BIO_MODEL_MAX_MODS][32];
	int n_classes;
	/* The head (config training.loss, .margin, .scale): SOFTMAX is the linear classifier
	 * (classifier.weight, classifier.bias); COSFACE and ARCFACE a cosine classifier
	 * (classifier.weight only) whose logits are scale * cos(theta), the margin applied to the
	 * target class by the loss only (inference sees no margin). */
	enum bio_loss_kind loss;
	float margin, scale;
};

/* Fills spec from the model.* keys of cfg (n_classes is left 0: it comes from the data).
 * Errors name the key and its file:line. */
int bio_model_spec_from_config(struct bio_model_spec *spec, const struct bio_config *cfg,
			       struct bio_error *err);
/* Checks a spec for consistency (sizes, pooling divisibility, limits). */
int bio_model_spec_check(const struct bio_model_spec *spec, struct bio_error *err);
/* 1 when two specs describe the same network. */
int bio_model_spec_equal(const struct bio_model_spec *a, const struct bio_model_spec *b);

enum bio_tensor_role { BIO_ROLE_PARAM, BIO_ROLE_BUFFER, BIO_ROLE_COUNT };

/* One state_dict entry. */
struct bio_model_tensor {
	char name[BIO_MODEL_NAME_MAX];
	enum bio_tensor_role role; /* PARAM: in params/grads; BUFFER: running stats; COUNT: int64 */
	int n_dims;
	int64_t shape[4];
	size_t numel;
	float *data;     /* params or buffers block (NULL for COUNT) */
	float *grad;     /* grads block (PARAM only) */
	int64_t *count;  /* COUNT only: num_batches_tracked */
	size_t offset;   /* PARAM: offset in the params block */
};

struct bio_model_branch; /* opaque: layers and activations of one modality */

struct bio_model {
	struct bio_model_spec spec;
	int max_batch;
	float *params, *grads;       /* n_params each */
	size_t n_params;
	float *moments;              /* 2 * n_params (optimizer state; zeroed) */
	float *buffers;              /* running means and variances */
	size_t n_buffers;
	int64_t *counts;             /* num_batches_tracked per batch norm */
	struct bio_model_tensor *tensors; /* state_dict order */
	size_t n_tensors;
	struct bio_model_branch *branches; /* n_mod */
	struct bio_fusion fusion;
	struct bio_linear classifier; /* softmax head */
	struct bio_cosine head;       /* margin heads (spec.loss != SOFTMAX) */
	float *fused, *d_fused;      /* [max_batch][fused_dim] */
	float *logits, *d_logits;    /* [max_batch][n_classes] */
	float **emb, **d_emb;        /* per modality [max_batch][embedding] */
	float *d_scratch;            /* backward's gradient scratch */
	float *d_halves[2];          /* its two halves (one may lie in block 1's output buffer) */
	int c1_fused;                /* block 1 in pieces (bio_c1_block_forward), no xhat[0] */
	size_t col_floats;           /* im2col scratch per thread (nn.c takes it where needed) */
	float *dw_part;              /* per-chunk conv weight-gradient partials */
	struct bio_nn_pool *pool;    /* NULL until bio_model_set_threads */
	int n_threads;
	size_t activation_bytes;     /* bytes of the activation/scratch blocks */
	const struct bio_nn_dist *dist; /* data-parallel: this rank's share of each batch (NULL:
				      * one process; see bio_model_set_dist) */
	int timing;                  /* 1: accumulate per-layer seconds into timers */
	/* Data-parallel communication during backward (NULL: none): called with a range
	 * [off, off + n) of grads as soon as backward has finished those gradients (n > 0; the
	 * ranges of one backward cover every parameter once, in the same order on every rank:
	 * the head, then per branch its dense layers, then its convolutions), and with n == 0
	 * between layers (a chance to move data already sent). */
	void (*grad_ready)(void *ctx, size_t off, size_t n);
	void *grad_ready_ctx;
	double timers[8];            /* see bio_model_timer_names */
	/* bio_model_fuse_adam: each branch's fc1 step, and the ranges of params it covers */
	struct bio_lin_fused fc1_fused[BIO_MODEL_MAX_MODS];
	size_t fused_skip[2 * BIO_MODEL_MAX_MODS];
	int n_fused;
};

/* Builds a model for batches of up to max_batch samples; all blocks preallocated, params zero.
 * Returns a new model or NULL with err set. */
struct bio_model *bio_model_new(const struct bio_model_spec *spec, int max_batch,
				struct bio_error *err);
void bio_model_free(struct bio_model *m);

/* A new model of src's spec (src borrowed) for batches of up to max_batch, holding src's
 * parameters, running statistics and batch counts; gradients and optimizer moments zero, no
 * threads, not frozen. NULL with err set on failure. */
struct bio_model *bio_model_clone(const struct bio_model *src, int max_batch,
				  struct bio_error *err);

/* Marks the model's weights as fixed from now on (inference): the convolutions pack theirs once
 * instead of at every forward pass. Training it afterwards is a programming error. */
void bio_model_freeze(struct bio_model *m);

/* Runs the model's layers on n_threads threads (a pool owned by the model; OpenBLAS is set to
 * one thread). Results are bit-identical for every n_threads. */
int bio_model_set_threads(struct bio_model *m, int n_threads, struct bio_error *err);

/* PyTorch's default initialisation: conv/linear weights kaiming_uniform(a=sqrt(5)) and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), batch norm weight 1 bias 0, running mean 0 var 1, weighted
 * fusion logits 0. Deterministic from rng (borrowed, advanced). Gradients and optimizer moments
 * are left as they are (zero after bio_model_new). */
void bio_model_init_params(struct bio_model *m, struct bio_rng *rng);

/* Forward pass of n_batch (<= max_batch) samples: inputs[m] (borrowed, [n][1][S][S] floats for
 * modality m, in spec order) -> m->logits [n][n_classes]. training selects batch-norm batch
 * statistics and dropout; dropout masks come from rng (borrowed, advanced), or, when rng is NULL,
 * are the masks already in the model (see bio_model_dropout_mask; for tests). Inputs must stay
 * unchanged until backward. */
void bio_model_forward(struct bio_model *m, const float *const *inputs, int n_batch, int training);
void bio_model_forward_rng(struct bio_model *m, const float *const *inputs, int n_batch,
			   int training, struct bio_rng *rng);
/* The dropout mask [max_batch][hidden] of branch i (0 or 1/(1-p) per element). */
float *bio_model_dropout_mask(struct bio_model *m, int branch);
/* Embedding of branch i after the last forward, [n][embedding]. */
const float *bio_model_embedding(const struct bio_model *m, int branch);

/* Mean loss (spec.loss: softmax cross-entropy, or CosFace/ArcFace: bio_margin_ce_sum) of the
 * last forward against labels; fills m->d_logits with scale * d(loss)/d(logits) (scale =
 * 1/accumulation steps). *n_correct may be NULL. */
double bio_model_loss(struct bio_model *m, const int64_t *labels, int n_batch, float scale,
		      int *n_correct);
/* The same loss without gradients (validation): the sum over the n rows of logits. */
double bio_model_loss_sum(const struct bio_model *m, const float *logits, const int64_t *labels,
			  int n_batch, int *n_correct);
/* Backward pass from m->d_logits; adds into m->grads. Needs the last forward's activations. */
void bio_model_backward(struct bio_model *m, int n_batch, int training);
/* Zeroes the gradients (but for those of fused layers, which are never formed). */
void bio_model_zero_grad(struct bio_model *m);
/* Fuses an Adam step into each branch's fc1 (struct bio_lin_fused), the bulk of the weights: its
 * weight gradient is then never formed and its part of grads (most of their bytes) never
 * touched, so never resident. mom_m, mom_v: the optimizer's moments (laid out as
 * params); c: the constants of the coming step, which the caller sets before each backward
 * (bio_optim_adam_consts). m->fused_skip then names the fused ranges, for the optimizer to skip
 * (struct bio_optim's skip). For a plain step per batch only: no gradient accumulation,
 * clipping or data-parallel reduction, which need the whole gradient. */
void bio_model_fuse_adam(struct bio_model *m, float *mom_m, float *mom_v,
			 const struct bio_adam *c);
/* Data-parallel training (borrowed, NULL = one process): forward, loss and backward then take
 * dist's n samples, [s0, s0 + n) of a global batch of n_global (n may be 0), synchronise the
 * batch-norm statistics and sums over the ranks, draw the dropout masks of the whole global batch
 * and scale the loss by n_global. The parameter gradients are this rank's tree sums: add them
 * over the ranks with the same tree (bio_nn_dist) before the optimizer step. */
void bio_model_set_dist(struct bio_model *m, const struct bio_nn_dist *dist);

/* Looks up a state_dict entry by name; NULL when absent. */
const struct bio_model_tensor *bio_model_find(const struct bio_model *m, const char *name);

/* Approximate floating-point operations of one training sample (forward + backward). */
double bio_model_train_flops(const struct bio_model_spec *spec);

/* Per-layer timing (seconds, accumulated by forward/backward when m->timing is on). */
#define BIO_MODEL_N_TIMERS 8
extern const char *const bio_model_timer_names[BIO_MODEL_N_TIMERS];

#endif
