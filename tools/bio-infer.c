/* bio-infer: applies a trained checkpoint to a samples stream and writes a predictions stream
 * (or CSV): per sample its id, true label, predicted identity with its name, the top-k classes
 * with softmax scores, and on request the embedding of each modality branch and the fused one.
 * The model comes from a checkpoint file or from the tracking store's model registry
 * (models:/NAME/VERSION, models:/NAME/latest). Samples go through the network in batches in eval
 * mode; every sample's result is the same whatever the batch size and thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bio/checkpoint.h"
#include "bio/csv.h"
#include "bio/header.h"
#include "bio/kernels.h"
#include "bio/model.h"
#include "bio/nn.h"
#include "bio/stream.h"
#include "bio/thread.h"
#include "bio/track.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-infer -m MODEL [OPTIONS] [SAMPLES...]\n"
		"Predict identities for a samples stream (standard input when no file or '-' is\n"
		"given) with a trained checkpoint, and write a predictions stream.\n"
		"\n"
		"  -m, --model MODEL      checkpoint file, or models:/NAME/VERSION, models:/NAME@ALIAS,\n"
		"                         models:/NAME/latest or runs:/RUN_ID/PATH from the tracking\n"
		"                         store or server (tracking.uri)\n"
		"  -s, --split NAME       only samples of this split (default infer.split: all)\n"
		"  -b, --batch-size N     samples per forward pass (default infer.batch_size)\n"
		"  -k, --topk K           classes kept per sample (default infer.topk)\n"
		"  -e, --embeddings       also write emb_<modality> and emb_fused per sample\n"
		"      --csv              write CSV instead of a bio-stream\n"
		"      --shard I/N        only samples whose record index modulo N is I\n" BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: infer.batch_size, infer.topk, infer.embeddings, infer.split, tracking.uri,\n"
		"tracking.cache_dir, tracking.timeout.\n"
		"See bio-infer(1).\n");
}

/* Everything the batch loop needs. */
struct infer {
	struct bio_tool *t;
	struct bio_model *model;       /* worker 0's model; spec and fusion for all */
	struct bio_model **models;     /* one per worker thread, each batch size 1 */
	int n_workers;
	struct bio_nn_pool *pool;      /* n_workers threads, the caller's included */
	int group; /* samples per forward pass of a worker (1 with OpenBLAS) */
	int n_classes, fused_dim, emb_dim, topk, embeddings, csv;
	char **labels;
	size_t n_labels;
	int batch_size;
	size_t pixels;
	float *inputs[BIO_MODEL_MAX_MODS];  /* [batch][1][S][S] per model modality */
	int64_t *true_labels;               /* [batch] */
	char **ids;                          /* [batch] */
	int n_pending;
	struct bio_stream_writer *w;
	FILE *out;
	float *logits;                       /* results [batch][n_classes] */
	float *emb[BIO_MODEL_MAX_MODS];      /* results [batch][embedding] per modality */
	float *fused;                        /* results [batch][fused_dim] */
	float *alpha;                        /* results [batch][n_mod]: fusion weights */
	int has_alpha;                       /* attention or weighted fusion */
	int *order;                          /* top-k scratch [n_classes] */
	double *probs;                       /* softmax scratch [n_classes] */
};

/* Softmax in double of one row of logits into probs. */
static void softmax_row(double *probs, const float *logits, int n)
{
	double mx = logits[0], sum = 0;
	for (int c = 1; c < n; c++)
		if (logits[c] > mx)
			mx = logits[c];
	for (int c = 0; c < n; c++) {
		probs[c] = exp((double)logits[c] - mx);
		sum += probs[c];
	}
	for (int c = 0; c < n; c++)
		probs[c] /= sum;
}

/* Indices of the k largest probs into order[0..k), ties by the lower index (stable). */
static void top_k(int *order, const double *probs, int n, int k)
{
	for (int i = 0; i < k; i++) {
		int best = -1;
		for (int c = 0; c < n; c++) {
			int taken = 0;
			for (int j = 0; j < i; j++)
				taken |= order[j] == c;
			if (!taken && (best < 0 || probs[c] > probs[best]))
				best = c;
		}
		order[i] = best;
	}
}

static void csv_vector(FILE *f, const float *v, int n)
{
	fputc(',', f);
	for (int i = 0; i < n; i++) {
		if (i)
			fputc(';', f);
		bio_csv_put_float(f, v[i]);
	}
}

static void pack_vector(struct bio_stream_writer *w, const char *key, const float *v, int n)
{
	struct bio_tensor t;
	int64_t shape[1] = {n};
	bio_tensor_view(&t, BIO_DTYPE_F32, 1, shape, (void *)v);
	bio_pack_str(w, key);
	bio_pack_tensor(w, &t);
}

/* Worker w's share of the pending batch: groups of in->group samples, w, w + n_workers, ... Each
 * sample's result is bit-identical whatever the batch size, the thread count and its batch
 * neighbours: every layer computes each sample on its own (biopipe's GEMMs give each row of C
 * the same operations for any number of rows). With OpenBLAS computing the GEMMs, which does
 * not promise that, every sample goes through the network alone (group 1). */
static void worker_run(struct infer *in, int index, int n)
{
	struct bio_model *m = in->models[index];
	int n_mod = m->spec.n_mod, g = in->group;
	for (int i = index * g; i < n; i += in->n_workers * g) {
		int nb = n - i < g ? n - i : g;
		const float *inputs[BIO_MODEL_MAX_MODS];
		for (int b = 0; b < n_mod; b++)
			inputs[b] = in->inputs[b] + (size_t)i * in->pixels;
		bio_model_forward(m, inputs, nb, 0);
		memcpy(in->logits + (size_t)i * in->n_classes, m->logits,
		       (size_t)nb * in->n_classes * sizeof(float));
		for (int b = 0; b < n_mod; b++)
			memcpy(in->emb[b] + (size_t)i * in->emb_dim, bio_model_embedding(m, b),
			       (size_t)nb * in->emb_dim * sizeof(float));
		memcpy(in->fused + (size_t)i * in->fused_dim, m->fused,
		       (size_t)nb * in->fused_dim * sizeof(float));
		for (int k = 0; k < nb && in->has_alpha; k++) /* weighted: one row for all */
			memcpy(in->alpha + (size_t)(i + k) * n_mod,
			       m->fusion.alpha + (m->spec.fusion == BIO_FUSION_ATTENTION
						  ? (size_t)k * n_mod : 0),
			       (size_t)n_mod * sizeof(float));
	}
}

struct run {
	struct infer *in;
	int n;
};

/* The pool's range of workers (one each: there are as many threads as workers). */
static void workers_range(void *ctx, size_t begin, size_t end, int thread)
{
	const struct run *r = ctx;
	(void)thread;
	for (size_t w = begin; w < end; w++)
		worker_run(r->in, (int)w, r->n);
}

/* Runs the n pending samples through the workers on the pool (the calling thread is one). */
static void run_workers(struct infer *in, int n)
{
	struct run r = {in, n};
	int n_active = in->n_workers < n ? in->n_workers : n;
	bio_nn_parallel_for(in->pool, (size_t)n_active, workers_range, &r);
}

/* Runs the pending batch through the model and writes one prediction per sample. */
static void flush_batch(struct infer *in)
{
	int n = in->n_pending;
	if (n == 0)
		return;
	struct bio_model *m = in->model;
	run_workers(in, n);
	int n_mod = m->spec.n_mod;
	int64_t top_idx[64];
	float top_score[64];
	for (int i = 0; i < n; i++) {
		const float *logits = in->logits + (size_t)i * in->n_classes;
		softmax_row(in->probs, logits, in->n_classes);
		top_k(in->order, in->probs, in->n_classes, in->topk);
		for (int j = 0; j < in->topk; j++) {
			top_idx[j] = in->order[j];
			top_score[j] = (float)in->probs[in->order[j]];
		}
		int pred = in->order[0];
		int64_t label = in->true_labels[i];
		if (in->csv) {
			FILE *f = in->out;
			bio_csv_put_field(f, in->ids[i]);
			fprintf(f, ",%lld,", (long long)label);
			if (label >= 0)
				bio_csv_put_field(f, in->labels[label]);
			fprintf(f, ",%d,", pred);
			bio_csv_put_field(f, in->labels[pred]);
			fputc(',', f);
			bio_csv_put_float(f, top_score[0]);
			fputc(',', f);
			for (int j = 0; j < in->topk; j++)
				fprintf(f, "%s%lld", j ? ";" : "", (long long)top_idx[j]);
			csv_vector(f, top_score, in->topk);
			if (in->embeddings) {
				for (int b = 0; b < n_mod; b++)
					csv_vector(f, in->emb[b] + (size_t)i * in->emb_dim,
						   in->emb_dim);
				csv_vector(f, in->fused + (size_t)i * in->fused_dim, in->fused_dim);
			}
			fputc('\n', f);
		} else {
			struct bio_stream_writer *w = in->w;
			bio_stream_begin_record(w);
			bio_pack_map(w, 7 + (in->embeddings ? (size_t)n_mod + 1 + (in->has_alpha != 0)
							    : 0));
			bio_pack_kv_str(w, "id", in->ids[i]);
			bio_pack_kv_int(w, "label", label);
			bio_pack_kv_int(w, "pred", pred);
			bio_pack_kv_str(w, "pred_name", in->labels[pred]);
			bio_pack_kv_double(w, "score", (double)top_score[0]);
			struct bio_tensor t;
			int64_t shape[1] = {in->topk};
			bio_tensor_view(&t, BIO_DTYPE_I64, 1, shape, top_idx);
			bio_pack_str(w, "topk");
			bio_pack_tensor(w, &t);
			pack_vector(w, "topk_scores", top_score, in->topk);
			if (in->embeddings) {
				char key[64];
				for (int b = 0; b < n_mod; b++) {
					snprintf(key, sizeof key, "emb_%s", m->spec.modalities[b]);
					pack_vector(w, key, in->emb[b] + (size_t)i * in->emb_dim,
						    in->emb_dim);
				}
				pack_vector(w, "emb_fused", in->fused + (size_t)i * in->fused_dim,
					    in->fused_dim);
				if (in->has_alpha)
					pack_vector(w, "fusion_weights",
						    in->alpha + (size_t)i * n_mod, n_mod);
			}
		}
		free(in->ids[i]);
		in->ids[i] = NULL;
	}
	in->n_pending = 0;
}

/* Checks the samples header (parsed by bio_header_read) against the model: modalities, input
 * shape and, when the samples carry label names, the label set. */
static void check_samples_meta(struct infer *in, struct bio_stream_reader *r,
			       const struct bio_header *h, const char *model_name)
{
	struct bio_tool *t = in->t;
	struct bio_error err;
	const struct bio_model_spec *spec = &in->model->spec;
	const char *src = bio_stream_reader_source(r);
	for (int b = 0; b < spec->n_mod; b++)
		if (bio_header_modality(h, spec->modalities[b]) < 0)
			bio_tool_die(t, "%s: the samples carry no modality '%s' that the model %s "
				     "needs (scan.modalities of the samples, model.modalities of the "
				     "model)", src, spec->modalities[b], model_name);
	if (h->shape[1] != spec->input_size || h->shape[2] != spec->input_size)
		bio_tool_die(t, "%s: header meta 'shape': the samples are %lldx%lld, the model %s "
			     "takes %dx%d (prep.size of the samples, model.input_size of the model)",
			     src, (long long)h->shape[2], (long long)h->shape[1], model_name,
			     spec->input_size, spec->input_size);
	if (!h->labels)
		return; /* unlabelled samples: nothing to compare */
	char what[512];
	snprintf(what, sizeof what, "%s: the samples against the model %s (labels come from "
		 "bio-scan: scan.identity, scan.root)", src, model_name);
	if (bio_header_same_labels(h, in->labels, in->n_labels, what, &err) < 0)
		bio_tool_die_err(t, &err);
}

int main(int argc, char **argv)
{
	enum { OPT_CSV = 0x2000, OPT_SHARD };
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"model", required_argument, 0, 'm'},
		{"split", required_argument, 0, 's'},
		{"batch-size", required_argument, 0, 'b'},
		{"topk", required_argument, 0, 'k'},
		{"embeddings", no_argument, 0, 'e'},
		{"csv", no_argument, 0, OPT_CSV},
		{"shard", required_argument, 0, OPT_SHARD},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	const char *model_arg = NULL, *split = NULL;
	long long batch_size = -1, topk = -1, shard_i = 0, shard_n = 1;
	int embeddings = -1, csv = 0, opt;

	bio_tool_init(&t, "bio-infer", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "m:s:b:k:e", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'm':
			model_arg = optarg;
			break;
		case 's':
			split = optarg;
			bio_tool_option_key(&t, "--split", "infer.split", optarg);
			break;
		case 'b':
			batch_size = bio_tool_parse_count(&t, "--batch-size", optarg, 1, 4096);
			bio_tool_option_key(&t, "--batch-size", "infer.batch_size", optarg);
			break;
		case 'k':
			topk = bio_tool_parse_count(&t, "--topk", optarg, 1, 64);
			bio_tool_option_key(&t, "--topk", "infer.topk", optarg);
			break;
		case 'e':
			embeddings = 1;
			bio_tool_option_key(&t, "--embeddings", "infer.embeddings", "true");
			break;
		case OPT_CSV:
			csv = 1;
			break;
		case OPT_SHARD:
			bio_tool_parse_shard(&t, optarg, &shard_i, &shard_n);
			break;
		}
	}
	bio_tool_load_config(&t);
	{
		struct bio_error kerr = {0};
		if (bio_kernels_init(&kerr) != 0)
			bio_tool_die_err(&t, &kerr);
		if (t.verbose)
			bio_tool_warn(&t, "%s", bio_kernels_describe());
	}
	if (!model_arg)
		bio_tool_usage_error(&t, "no model given (-m CHECKPOINT or -m models:/NAME/VERSION)");
	int64_t v;
	int b;
	if (batch_size < 0) {
		if (bio_config_get_int_range(t.cfg, "infer.batch_size", 1, 4096, &v, &err) < 0)
			bio_tool_die_err(&t, &err);
		batch_size = v;
	}
	if (topk < 0) {
		if (bio_config_get_int_range(t.cfg, "infer.topk", 1, 64, &v, &err) < 0)
			bio_tool_die_err(&t, &err);
		topk = v;
	}
	if (embeddings < 0) {
		if (bio_config_get_bool(t.cfg, "infer.embeddings", &b, &err) < 0)
			bio_tool_die_err(&t, &err);
		embeddings = b;
	}

	if (!split) {
		if (bio_config_get_str(t.cfg, "infer.split", &split, &err) < 0)
			bio_tool_die_err(&t, &err);
		if (!split[0])
			split = NULL;
	}

	/* The model: a file, or a registered version in the tracking store. */
	char *model_path = NULL;
	if (strncmp(model_arg, "models:/", 8) == 0 || strncmp(model_arg, "runs:/", 6) == 0) {
		/* from a tracking server, the file is downloaded into tracking.cache_dir */
		const char *uri;
		struct bio_track_opts topts;
		if (bio_config_get_str(t.cfg, "tracking.uri", &uri, &err) < 0 ||
		    bio_track_opts_from_config(&topts, t.cfg, &err) < 0 ||
		    bio_track_resolve_model_opts(&model_path, uri, &topts, model_arg, &err) < 0)
			bio_tool_die_err(&t, &err);
	} else {
		model_path = strdup(model_arg);
		if (!model_path)
			bio_tool_die(&t, "out of memory");
	}
	/* Threads work on different samples, each with its own copy of the model; OpenBLAS runs
	 * single-threaded inside them so the thread budget is not exceeded. */
	bio_nn_set_threads(1);
	struct infer in = {.t = &t, .topk = (int)topk, .embeddings = embeddings, .csv = csv,
			   .batch_size = (int)batch_size};
	in.n_workers = t.n_threads < 64 ? t.n_threads : 64;
	if (in.n_workers > in.batch_size)
		in.n_workers = in.batch_size;
	/* groups of up to 8: the big weights are read once per group, not once per sample */
	in.group = (in.batch_size + in.n_workers - 1) / in.n_workers;
	if (in.group > 8)
		in.group = 8;
	if (bio_kernels_uses_openblas())
		in.group = 1;
	in.models = calloc((size_t)in.n_workers, sizeof(*in.models));
	in.pool = bio_nn_pool_new(in.n_workers);
	if (!in.models || !in.pool)
		bio_tool_die(&t, "cannot start %d threads", in.n_workers);
	struct bio_ckpt_meta meta;
	memset(&meta, 0, sizeof meta);
	if (bio_checkpoint_load(&in.models[0], NULL, NULL, &meta, model_path, in.group, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (t.verbose && !meta.checksummed)
		fprintf(stderr, "bio-infer: %s: no checksums (written before checkpoints had them): "
			"loaded unchecked\n", model_path);
	for (int w = 1; w < in.n_workers; w++) /* the other workers' copies */
		if (!(in.models[w] = bio_model_clone(in.models[0], in.group, &err)))
			bio_tool_die_err(&t, &err);
	for (int w = 0; w < in.n_workers; w++)
		bio_model_freeze(in.models[w]);
	in.model = in.models[0];
	const struct bio_model_spec *spec = &in.model->spec;
	in.labels = meta.labels;
	in.n_labels = meta.n_labels;
	in.n_classes = spec->n_classes;
	if (in.n_labels != (size_t)in.n_classes)
		bio_tool_die(&t, "%s: %zu label names for %d classes", model_path, in.n_labels,
			     in.n_classes);
	if (in.topk > in.n_classes)
		in.topk = in.n_classes;
	in.fused_dim = bio_fusion_out_dim(&in.model->fusion);
	in.emb_dim = spec->embedding;

	/* Inputs. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	struct bio_header sh;
	if (bio_header_read(&sh, r, "samples", BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, &err) < 0)
		bio_tool_die_err(&t, &err);
	check_samples_meta(&in, r, &sh, model_path);
	in.pixels = (size_t)spec->input_size * (size_t)spec->input_size;
	for (int m = 0; m < spec->n_mod; m++) {
		in.inputs[m] = calloc((size_t)in.batch_size * in.pixels, sizeof(float));
		if (!in.inputs[m])
			bio_tool_die(&t, "out of memory");
	}
	in.true_labels = calloc((size_t)in.batch_size, sizeof(int64_t));
	in.ids = calloc((size_t)in.batch_size, sizeof(char *));
	in.order = calloc((size_t)in.n_classes, sizeof(int));
	in.probs = calloc((size_t)in.n_classes, sizeof(double));
	in.logits = calloc((size_t)in.batch_size * (size_t)in.n_classes, sizeof(float));
	in.fused = calloc((size_t)in.batch_size * (size_t)in.fused_dim, sizeof(float));
	in.has_alpha = spec->fusion != BIO_FUSION_CONCAT;
	in.alpha = calloc((size_t)in.batch_size * (size_t)spec->n_mod, sizeof(float));
	for (int m = 0; m < spec->n_mod; m++)
		if (!(in.emb[m] = calloc((size_t)in.batch_size * (size_t)in.emb_dim, sizeof(float))))
			bio_tool_die(&t, "out of memory");
	if (!in.true_labels || !in.ids || !in.order || !in.probs || !in.logits || !in.fused ||
	    !in.alpha)
		bio_tool_die(&t, "out of memory");

	/* Output header. */
	in.out = csv ? bio_tool_output_open(&t) : bio_tool_output_open_stream(&t);
	if (csv) {
		fputs("id,label,label_name,pred,pred_name,score,topk,topk_scores", in.out);
		if (embeddings) {
			for (int m = 0; m < spec->n_mod; m++)
				fprintf(in.out, ",emb_%s", spec->modalities[m]);
			fputs(",emb_fused", in.out);
		}
		fputc('\n', in.out);
	} else {
		in.w = bio_stream_writer_new(in.out, &err);
		if (!in.w)
			bio_tool_die_err(&t, &err);
		bio_stream_writer_set_name(in.w, bio_tool_output_name(&t));
		struct bio_stream_writer *w = in.w;
		bio_stream_begin_header(w, "predictions");
		bio_pack_map(w, 11);
		bio_pack_kv_str(w, "program", "bio-infer");
		bio_pack_kv_str(w, "version", BIO_VERSION);
		bio_pack_kv_str(w, "model", model_arg);
		bio_pack_str(w, "labels");
		bio_pack_array(w, in.n_labels);
		for (size_t i = 0; i < in.n_labels; i++)
			bio_pack_str(w, in.labels[i]);
		bio_pack_str(w, "modalities");
		bio_pack_array(w, (size_t)spec->n_mod);
		for (int m = 0; m < spec->n_mod; m++)
			bio_pack_str(w, spec->modalities[m]);
		bio_pack_kv_str(w, "fusion", bio_fusion_name(spec->fusion));
		bio_pack_kv_int(w, "topk", in.topk);
		bio_pack_str(w, "embeddings");
		bio_pack_bool(w, embeddings);
		bio_pack_kv_int(w, "embedding_dim", in.emb_dim);
		bio_pack_kv_int(w, "fused_dim", in.fused_dim);
		bio_pack_kv_int(w, "epoch", meta.epoch);
	}

	/* Batches of samples through the model. */
	uint64_t n_seen = 0, n_written = 0;
	for (;;) {
		const struct bio_value *rec;
		int rc = bio_stream_read_record(r, &rec, &err);
		if (rc < 0)
			bio_tool_die_err(&t, &err);
		if (rc == 0)
			break;
		if ((long long)(n_seen++ % (uint64_t)shard_n) != shard_i)
			continue;
		if (split) {
			const char *s;
			size_t len;
			if (bio_record_get_str(&s, &len, r, rec, "split", &err) < 0)
				bio_tool_die_err(&t, &err);
			if (len != strlen(split) || memcmp(s, split, len) != 0)
				continue;
		}
		const char *id;
		size_t id_len;
		int64_t label = -1;
		if (bio_record_get_str(&id, &id_len, r, rec, "id", &err) < 0)
			bio_tool_die_err(&t, &err);
		/* no label: unknown (-1 in the predictions); a label present is a class index */
		if (bio_value_get(rec, "label") &&
		    bio_record_get_label(&label, &sh, r, rec, "label", 0, &err) < 0)
			bio_tool_die_err(&t, &err);
		if (label >= in.n_classes)
			bio_tool_die(&t, "%s: record %llu: key 'label': label %lld outside the model's "
				     "%d classes", bio_stream_reader_source(r),
				     (unsigned long long)bio_stream_reader_record_index(r),
				     (long long)label, in.n_classes);
		int slot = in.n_pending;
		for (int m = 0; m < spec->n_mod; m++) {
			struct bio_tensor tv;
			if (bio_record_get_sample(&tv, &sh, r, rec, spec->modalities[m], 0, &err) < 0)
				bio_tool_die_err(&t, &err);
			memcpy(in.inputs[m] + (size_t)slot * in.pixels, tv.data, tv.data_bytes);
		}
		in.ids[slot] = strndup(id, id_len);
		if (!in.ids[slot])
			bio_tool_die(&t, "out of memory");
		in.true_labels[slot] = label;
		in.n_pending++;
		n_written++;
		if (in.n_pending == in.batch_size)
			flush_batch(&in);
		bio_tool_progress(&t, "samples", n_written, 0);
	}
	flush_batch(&in);
	bio_tool_progress_end(&t);
	if (!csv && bio_stream_finish(in.w, 0, NULL, NULL, &err) < 0)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE (reader went away): exits 0 quietly */
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr, "bio-infer: %llu predictions\n", (unsigned long long)n_written);
	bio_stream_writer_free(in.w);
	bio_header_destroy(&sh);
	bio_stream_reader_free(r);
	for (int m = 0; m < spec->n_mod; m++) {
		free(in.inputs[m]);
		free(in.emb[m]);
	}
	free(in.logits);
	free(in.fused);
	free(in.alpha);
	free(in.true_labels);
	free(in.ids);
	free(in.order);
	free(in.probs);
	for (int w = 0; w < in.n_workers; w++)
		bio_model_free(in.models[w]);
	free(in.models);
	bio_nn_pool_free(in.pool);
	bio_ckpt_meta_destroy(&meta);
	free(model_path);
	bio_config_free(t.cfg);
	return BIO_EXIT_OK;
}
