/* Neural-network layers on flat float arrays, with forward and backward passes (llm.c style):
 * conv2d (chunked im2col + one OpenBLAS sgemm per chunk of samples), batch norm (train/eval,
 * running statistics), ReLU, 2x2 max pool, linear, dropout, flatten, softmax cross-entropy, the
 * cosine classifier and its margin losses (CosFace, ArcFace) and the fusion modules (concat,
 * attention, weighted). nn.c is the only file that talks to OpenBLAS.
 *
 * Layouts. Convolution-stage activations are "CNHW": channel-major over the whole minibatch
 * (x[c][n][h][w]), so one GEMM covers many samples and batch norm sees each channel as one
 * contiguous run. A [N,1,H,W] input is already CNHW. Dense activations are row-major [N][F].
 * Weights use PyTorch's layouts: conv [out][in][kh][kw], linear [out][in].
 *
 * Backward functions ADD into parameter gradients (the caller zeroes them) and WRITE the input
 * gradient d_in (overwrite), which may be NULL where noted.
 *
 * Threads: a layer whose `pool` is set spreads its work over the pool's threads in pieces fixed
 * independently of the thread count (conv: chunks of samples, with per-chunk weight-gradient
 * partials summed in chunk order; batch norm: channels; linear: blocks of outputs or inputs), each
 * piece computed by one single-threaded sgemm or loop in a fixed order, so results are
 * bit-identical for every thread count. The conv weight gradient's chunk partials are summed as
 * a pairwise tree (see dw_sum_range in nn.c): the order data-parallel ranks reproduce. */
#ifndef BIO_NN_H
#define BIO_NN_H

#include <stddef.h>
#include <stdint.h>

#include "bio/thread.h" /* the pool: bio_nn_pool_new, bio_nn_parallel_for */

/* Sets OpenBLAS's own thread count. With a bio_nn_pool, keep it at 1: the pool runs the
 * threads, and splits work (GEMMs included) into pieces fixed independently of the thread count,
 * so results are bit-identical for every thread count. */
void bio_nn_set_threads(int n_threads);

/* C = alpha * op(A) op(B) + beta * C, row-major, the library's single sgemm entry point. */
void bio_nn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
		  int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* ---- sums over the batch: one order for every thread count and every data-parallel split ----
 *
 * A batch is cut into pieces of BIO_NN_PIECE consecutive samples (the last may be shorter). Every
 * sum over the samples of a batch is formed per piece (in a fixed order inside the piece), and the
 * pieces' sums are added as a pairwise tree of a fixed shape, stride-doubling: part[p] +=
 * part[p + s] for p = 0, 2s, 4s, ... and s = 1, 2, 4, ... (four pieces: (p0 + p1) + (p2 + p3)).
 * Parameter gradients are float trees of float piece partials; batch-norm statistics and the loss
 * are double trees. A rank holding an aligned block of 2^k pieces (bio_nn_dist_split) forms the
 * tree of its block, and the ranks' sums added by the same tree over ranks are the bits of one
 * process: the convolutions' chunks are these pieces. */
#define BIO_NN_PIECE 4

/* The stride-doubling tree built leaf by leaf (a binary counter: each completed pair of equal
 * subtrees is added at once), so no more than 64 partial sums are ever held. */
struct bio_nn_tree {
	double v[64];
	uint64_t n;
	int depth;
};
void bio_nn_tree_init(struct bio_nn_tree *t);
void bio_nn_tree_push(struct bio_nn_tree *t, double x);
/* The tree sum of the leaves pushed (0 when none). */
double bio_nn_tree_sum(const struct bio_nn_tree *t);
/* v[0] = the tree sum of v[0..n) for each of `width` interleaved columns: v[p * width + i] is leaf
 * p of column i (v is consumed). */
void bio_nn_tree_d(double *v, size_t n, size_t width);
void bio_nn_tree_f(float *v, size_t n, size_t width);

/* Data-parallel training: which samples of the global batch this process (rank) holds, and how the
 * ranks add their sums. NULL where a layer takes one: one process. */
struct bio_nn_dist {
	int rank, size;
	int n_global;   /* samples in the global batch of this step */
	int s0, n;      /* this rank's samples: [s0, s0 + n) of the global batch (n may be 0) */
	int n_active;   /* ranks holding samples this step: ranks 0 .. n_active-1 */
	/* v[0..n) holds this rank's tree sums (ignored when it holds no samples); on return, on
	 * every rank, the tree over the active ranks' values (rank r's value is leaf r). */
	void (*allsum)(const struct bio_nn_dist *d, double *v, size_t n);
	void *ctx;
};
/* Sets s0, n and n_active for a global batch of n_global samples: rank r holds pieces
 * [r S, (r + 1) S) where S is the smallest power of two with size * S >= the number of pieces. */
void bio_nn_dist_split(struct bio_nn_dist *d, int n_global);

/* ---- conv2d ---- */

struct bio_conv2d {
	int c_in, c_out, k, stride, pad;
	int h_in, w_in, h_out, w_out; /* h_out = (h_in + 2 pad - k) / stride + 1 (set by _setup) */
	float *w, *b;                 /* [c_out][c_in][k][k], [c_out] (b may be NULL: no bias) */
	float *dw, *db;               /* gradients, same shapes */
	float *col;                   /* scratch: one buffer of col_floats floats per pool thread */
	size_t col_floats;            /* >= c_in*k*k*h_out*w_out * chunk */
	int chunk;                    /* samples per GEMM chunk; 0: as many as col_floats holds */
	float *dw_part;               /* backward scratch: c_out*c_in*k*k floats per chunk; NULL:
				       * accumulate straight into dw (single-threaded only) */
	struct bio_nn_pool *pool;     /* may be NULL */
	float *wp, *wp_flip;          /* the direct kernels' packed weights (BIO_CONV3X3_PACKED floats
				       * each; NULL: not direct), repacked by every call unless
				       * frozen (bio_conv2d_freeze) */
	int frozen;
};

/* Clears *l (no pool, buffers or scratch), then fills the geometry and the output size from the
 * input size; returns 0 or -1 when the output is empty. */
int bio_conv2d_setup(struct bio_conv2d *l, int c_in, int c_out, int k, int stride, int pad,
		     int h_in, int w_in);
/* Floats of col scratch one sample needs. */
size_t bio_conv2d_col_floats(const struct bio_conv2d *l);
/* out [c_out][n][h_out][w_out] = conv(in [c_in][n][h_in][w_in]). */
void bio_conv2d_forward(const struct bio_conv2d *l, float *out, const float *in, int n_batch);
/* For a layer whose weights no longer change (inference): packs them once, and forward uses
 * that packing from then on (the kernel path must not change afterwards). */
void bio_conv2d_freeze(struct bio_conv2d *l);
/* dw, db += ...; d_in (may be NULL: not needed) = gradient w.r.t. in. */
void bio_conv2d_backward(const struct bio_conv2d *l, float *d_in, const float *d_out,
			 const float *in, int n_batch);

/* ---- batch norm (per channel, CNHW) ---- */

struct bio_batchnorm {
	int c;             /* channels */
	int spatial;       /* h*w per sample */
	float eps;         /* 1e-5 */
	float momentum;    /* 0.1 */
	float *gamma, *beta, *dgamma, *dbeta;   /* [c] */
	float *running_mean, *running_var;      /* [c] */
	int64_t *num_batches_tracked;
	float *mean, *invstd; /* [c] scratch: statistics used by the last forward */
	struct bio_nn_pool *pool; /* may be NULL */
	const struct bio_nn_dist *dist; /* NULL: the batch is all in this process */
};

/* Training: normalises with the batch statistics (biased variance), updates the running
 * statistics (unbiased variance, momentum) and num_batches_tracked. Eval: uses the running ones.
 * xhat [c][n*spatial] receives the normalised input (may alias in), out = gamma*xhat + beta
 * (out may be NULL: see bio_affine_relu_maxpool2_forward). */
void bio_batchnorm_forward(const struct bio_batchnorm *l, float *out, float *xhat, const float *in,
			   int n_batch, int training);
/* xhat = normalised in with the statistics of the last forward (l->mean, l->invstd), bit for
 * bit what that forward wrote: to recompute activations instead of keeping them. */
void bio_batchnorm_renormalize(const struct bio_batchnorm *l, float *xhat, const float *in,
			       int n_batch);
/* dgamma, dbeta += ...; d_in (may alias d_out) = gradient w.r.t. the input. */
void bio_batchnorm_backward(const struct bio_batchnorm *l, float *d_in, const float *d_out,
			    const float *xhat, int n_batch, int training);

/* ---- elementwise ---- */

/* out = max(in, 0) over n floats (out may alias in). */
void bio_relu_forward(float *out, const float *in, size_t n);
/* d_in = d_out where out > 0, else 0 (d_in may alias d_out). */
void bio_relu_backward(float *d_in, const float *d_out, const float *out, size_t n);
/* out = in * mask (mask holds 0 or 1/(1-p), see bio_dropout_scale). */
void bio_dropout_forward(float *out, const float *in, const float *mask, size_t n);
void bio_dropout_backward(float *d_in, const float *d_out, const float *mask, size_t n);
/* The kept-unit scale 1/(1-p), rounded as PyTorch does (float division). */
float bio_dropout_scale(float p);

/* ---- 2x2 max pool, stride 2 (floor), over n_planes planes of h x w ---- */

/* out [n_planes][h/2][w/2]; argmax (u8, 0..3 = dy*2+dx) records the first maximum. */
void bio_maxpool2_forward(float *out, uint8_t *argmax, const float *in, size_t n_planes, int h,
			  int w);
/* d_in [n_planes][h][w] = scatter of d_out at argmax (zero elsewhere). */
void bio_maxpool2_backward(float *d_in, const float *d_out, const uint8_t *argmax,
			   size_t n_planes, int h, int w);
/* Same, through a ReLU before the pool: the gradient is kept only where the pooled output
 * `out` is positive (equal to relu_backward after maxpool2_backward when in = relu(x)). */
void bio_maxpool2_relu_backward(float *d_in, const float *d_out, const float *out,
				const uint8_t *argmax, size_t n_planes, int h, int w);

/* Fused batch-norm affine + ReLU + 2x2 max pool: out [c][n][h/2][w/2] = pool(relu(gamma[c] *
 * xhat + beta[c])) with argmax, equal to the three separate layers without storing their
 * outputs. Its backward is bio_maxpool2_relu_backward then bio_batchnorm_backward. */
void bio_affine_relu_maxpool2_forward(float *out, uint8_t *argmax, const float *xhat,
				      const float *gamma, const float *beta, int c, int n_batch,
				      int h, int w);

/* Backward of bio_affine_relu_maxpool2_forward through batch norm in one pass per channel:
 * xhat_dx [c][n][h][w] holds the normalised input (as left by bio_batchnorm_forward) and is
 * overwritten with the gradient w.r.t. the batch-norm input; dgamma, dbeta += ... Equal (up to
 * rounding) to bio_maxpool2_relu_backward then bio_batchnorm_backward, without the dense
 * intermediate gradient. l's mean/invstd are those of the forward pass. */
void bio_bn_relu_pool_backward(const struct bio_batchnorm *l, float *xhat_dx,
			       const float *d_pool, const float *pool_out, const uint8_t *argmax,
			       int n_batch, int h, int w, int training);

/* A first block (cv: 3x3, stride 1, padding 1, one input channel, with bias and per-chunk
 * weight-gradient partials; then bn, affine, ReLU, 2x2 max pool) done a piece of samples and
 * four channels at a time in a small per-thread buffer, the conv recomputed in each pass instead
 * of kept: the forward gives the bits of bio_conv2d_forward, bio_batchnorm_forward and
 * bio_affine_relu_maxpool2_forward, the backward those of that conv recomputed,
 * bio_batchnorm_renormalize, bio_bn_relu_pool_backward and bio_conv2d_backward (no input
 * gradient), without their [c][n][h][w] conv output: the largest activation of the model, and
 * 5 passes over it that went through memory. bio_c1_block_fits says whether cv is such a conv
 * (for batches of n_batch). */
int bio_c1_block_fits(const struct bio_conv2d *cv, int n_batch);
void bio_c1_block_forward(const struct bio_conv2d *cv, const struct bio_batchnorm *bn,
			  float *pool_out, uint8_t *argmax, const float *in, int n_batch,
			  int training);
void bio_c1_block_backward(const struct bio_conv2d *cv, const struct bio_batchnorm *bn,
			   const float *d_pool, const float *pool_out, const uint8_t *argmax,
			   const float *in, int n_batch, int training);

/* ---- flatten: CNHW [c][n][s] <-> row-major [n][c*s] (PyTorch's NCHW flatten order) ---- */

void bio_flatten_forward(float *out, const float *in, int c, int n_batch, int spatial);
void bio_flatten_backward(float *d_in, const float *d_out, int c, int n_batch, int spatial);

/* ---- linear ---- */

struct bio_adam;

/* An Adam step fused into a linear layer's backward: each block of columns of the weight
 * gradient goes from a small tile straight into the update of w (moments m, v laid out as w),
 * so dw is neither written nor read. Each element gets the bits of bio_adam on the gradient
 * bio_linear_backward would have added to a zeroed dw. */
struct bio_lin_fused {
	const struct bio_adam *c;
	float *m, *v;
};

struct bio_linear {
	int n_in, n_out;
	float *w, *b;   /* [n_out][n_in], [n_out] */
	float *dw, *db;
	struct bio_nn_pool *pool; /* may be NULL */
	const struct bio_lin_fused *fused; /* NULL: dw += the weight gradient */
};

/* out [n][n_out] = in [n][n_in] W^T + b. */
void bio_linear_forward(const struct bio_linear *l, float *out, const float *in, int n_batch);
/* dw, db += ...; d_in (may be NULL) = d_out W (with l->fused: d_in first, then w stepped in
 * place and dw untouched). */
void bio_linear_backward(const struct bio_linear *l, float *d_in, const float *d_out,
			 const float *in, int n_batch);

/* ---- softmax cross-entropy (mean over the batch) ---- */

/* Returns the mean loss over n rows of logits [n][n_classes] with labels in [0, n_classes).
 * When d_logits is non-NULL it receives scale * d(mean loss)/d(logits). *n_correct (may be NULL)
 * counts rows whose first arg-max equals the label. */
double bio_softmax_ce(float *d_logits, int *n_correct, const float *logits, const int64_t *labels,
		      int n_batch, int n_classes, float scale);
/* The same loss as a sum over the rows (per piece, by the tree), d_logits = d_scale *
 * d(loss)/d(logits) per row: for a batch split over ranks. */
double bio_softmax_ce_sum(float *d_logits, int *n_correct, const float *logits,
			  const int64_t *labels, int n_batch, int n_classes, double d_scale);

/* ---- additive-margin softmax (CosFace, ArcFace) over a cosine classifier ---- */

enum bio_loss_kind { BIO_LOSS_SOFTMAX, BIO_LOSS_COSFACE, BIO_LOSS_ARCFACE };

/* Parses "softmax" | "cosface" | "arcface"; returns 0 or -1. */
int bio_loss_parse(enum bio_loss_kind *out, const char *name);
const char *bio_loss_name(enum bio_loss_kind kind);

/* A cosine classifier: out[n][c] = scale * cos(theta_nc) = scale * (u_n . v_c), u_n = in_n /
 * max(|in_n|, 1e-12), v_c = w_c / max(|w_c|, 1e-12) (F.normalize of both, no bias). The
 * scratch u [n][n_in], u_inv [n], v [n_out][n_in], v_inv [n_out] hold the last forward's
 * normalised inputs and weights (for backward). Single-threaded, each output one loop in a
 * fixed order. */
struct bio_cosine {
	int n_in, n_out;
	float scale;      /* s > 0 */
	float *w, *dw;    /* [n_out][n_in] */
	float *u, *u_inv; /* scratch [max_batch][n_in], [max_batch] */
	float *v, *v_inv; /* scratch [n_out][n_in], [n_out] */
};

/* out [n][n_out] = scale * cos(in, w); fills the scratch. */
void bio_cosine_forward(const struct bio_cosine *l, float *out, const float *in, int n_batch);
/* dw += ... (per piece of BIO_NN_PIECE samples, pieces added by the tree, as a linear layer's
 * weight gradient); d_in (may be NULL) = gradient w.r.t. in. Needs the last forward's scratch. */
void bio_cosine_backward(const struct bio_cosine *l, float *d_in, const float *d_out,
			 int n_batch);

/* The margin loss over the plain logits z = s cos(theta) of a cosine classifier, as a sum over
 * the rows (per piece, by the tree): the target logit is replaced by s (cos - m) (CosFace) or
 * s cos(theta + m) (ArcFace; where theta + m > pi, i.e. cos <= cos(pi - m), by s (cos - m
 * sin(pi - m)), insightface's monotone fallback), then softmax cross-entropy. d_logits (may be
 * NULL) receives d_scale * d(loss)/d(z) per row, chained through the margin; *n_correct counts
 * rows whose first arg-max of z (no margin: what inference sees) is the label. SOFTMAX is
 * bio_softmax_ce_sum (margin and scale unused). */
double bio_margin_ce_sum(float *d_logits, int *n_correct, const float *logits,
			 const int64_t *labels, int n_batch, int n_classes,
			 enum bio_loss_kind kind, float margin, float scale, double d_scale);

/* ---- fusion of n_mod embeddings [n][dim] ---- */

enum bio_fusion_kind { BIO_FUSION_CONCAT, BIO_FUSION_ATTENTION, BIO_FUSION_WEIGHTED };

/* Weighted: alpha = softmax(w) (one pair of weights for all samples), out = sum_m alpha_m u_m
 * over the L2-normalised embeddings u_m = e_m / max(|e_m|, 1e-12), so that the branch with the
 * larger norm cannot dominate the sum whatever its weight.
 * Attention is bounded so that it cannot saturate: each embedding is L2-normalised, u_m = e_m /
 * max(|e_m|, 1e-12), the score is the cosine between u_m and the score vector w over a
 * temperature T, s_m = (u_m . w / |w| + b) / T, alpha = softmax(s) over the modalities, and the
 * output is sum_m alpha_m u_m (the normalised embeddings: no branch wins by its norm). |cos| <= 1
 * bounds every weight inside [1 / (1 + (M-1) e^(2/T)), 1 / (1 + (M-1) e^(-2/T))] (two
 * modalities, T = 1: [0.119, 0.881]) whatever the training does. b is shared by the modalities,
 * so it cancels in the softmax (kept: PyTorch's nn.Linear(dim, 1) has it). */
struct bio_fusion {
	enum bio_fusion_kind kind;
	int n_mod, dim;
	/* attention: w [dim], b [1] (a shared linear dim->1 score per modality);
	 * weighted: w [n_mod] (logits of the softmax weights); concat: none. */
	float *w, *b, *dw, *db;
	float *alpha; /* scratch: softmax weights, [n][n_mod] (attention) or [n_mod] (weighted) */
	float temperature; /* attention: T > 0 */
};

/* Output width: n_mod*dim for concat, dim otherwise. */
int bio_fusion_out_dim(const struct bio_fusion *f);
/* Parses "concat" | "attention" | "weighted"; returns 0 or -1. */
int bio_fusion_parse(enum bio_fusion_kind *out, const char *name);
const char *bio_fusion_name(enum bio_fusion_kind kind);
/* out [n][out_dim] from emb[m] [n][dim] (borrowed); f->alpha receives the weights. */
void bio_fusion_forward(const struct bio_fusion *f, float *out, const float *const *emb,
			int n_batch);
/* dw, db += ...; d_emb[m] [n][dim] written. */
void bio_fusion_backward(const struct bio_fusion *f, float *const *d_emb, const float *d_out,
			 const float *const *emb, int n_batch);

#endif
