/* bio-infer: applies a trained checkpoint to a samples stream and writes a predictions stream
 * (or CSV): per sample its id, true label, predicted identity with its name, the top-k classes
 * with softmax scores, and on request the embedding of each modality branch and the fused one.
 * The model comes from a checkpoint file or from the tracking store's model registry
 * (models:/NAME/VERSION, models:/NAME/latest). Samples go through the network in batches in eval
 * mode; every sample's result is the same whatever the batch size and thread count. */
#include <stdlib.h>
#include <string.h>

#include "bio/checkpoint.h"
#include "bio/csv.h"
#include "bio/header.h"
#include "bio/infer.h"
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
	struct bio_infer e;  /* the model's workers and the batch's inputs and results */
	int topk, embeddings, csv;
	char **labels;
	size_t n_labels;
	int64_t *true_labels; /* [batch] */
	char **ids;           /* [batch] */
	int n_pending;
	struct bio_stream_writer *w;
	FILE *out;
	int *order;           /* top-k scratch [n_classes] */
	double *probs;        /* softmax scratch [n_classes] */
};

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

/* Runs the pending batch through the model and writes one prediction per sample. */
static void flush_batch(struct infer *in)
{
	int n = in->n_pending;
	if (n == 0)
		return;
	struct bio_infer *e = &in->e;
	bio_infer_run(e, n);
	int n_mod = e->n_mod;
	int64_t top_idx[64];
	float top_score[64];
	for (int i = 0; i < n; i++) {
		const float *logits = e->logits + (size_t)i * e->n_classes;
		bio_infer_softmax(in->probs, logits, e->n_classes);
		bio_infer_top_k(in->order, in->probs, e->n_classes, in->topk);
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
					csv_vector(f, e->emb[b] + (size_t)i * e->emb_dim,
						   e->emb_dim);
				csv_vector(f, e->fused + (size_t)i * e->fused_dim, e->fused_dim);
			}
			fputc('\n', f);
		} else {
			struct bio_stream_writer *w = in->w;
			bio_stream_begin_record(w);
			bio_pack_map(w, 7 + (in->embeddings ? (size_t)n_mod + 1 + (e->has_alpha != 0)
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
					snprintf(key, sizeof key, "emb_%s", e->model->spec.modalities[b]);
					pack_vector(w, key, e->emb[b] + (size_t)i * e->emb_dim,
						    e->emb_dim);
				}
				pack_vector(w, "emb_fused", e->fused + (size_t)i * e->fused_dim,
					    e->fused_dim);
				if (e->has_alpha)
					pack_vector(w, "fusion_weights",
						    e->alpha + (size_t)i * n_mod, n_mod);
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
	const struct bio_model_spec *spec = &in->e.model->spec;
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

/* The CSV column names, or the predictions stream's header (in->out open). */
static void write_header(struct infer *in, const char *model_arg, int64_t epoch)
{
	struct bio_error err = {0};
	const struct bio_model_spec *spec = &in->e.model->spec;
	if (in->csv) {
		fputs("id,label,label_name,pred,pred_name,score,topk,topk_scores", in->out);
		if (in->embeddings) {
			for (int m = 0; m < spec->n_mod; m++)
				fprintf(in->out, ",emb_%s", spec->modalities[m]);
			fputs(",emb_fused", in->out);
		}
		fputc('\n', in->out);
		return;
	}
	in->w = bio_stream_writer_new(in->out, &err);
	if (!in->w)
		bio_tool_die_err(in->t, &err);
	bio_stream_writer_set_name(in->w, bio_tool_output_name(in->t));
	struct bio_stream_writer *w = in->w;
	bio_stream_begin_header(w, "predictions");
	bio_pack_map(w, 11);
	bio_pack_kv_str(w, "program", "bio-infer");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_kv_str(w, "model", model_arg);
	bio_pack_str(w, "labels");
	bio_pack_array(w, in->n_labels);
	for (size_t i = 0; i < in->n_labels; i++)
		bio_pack_str(w, in->labels[i]);
	bio_pack_str(w, "modalities");
	bio_pack_array(w, (size_t)spec->n_mod);
	for (int m = 0; m < spec->n_mod; m++)
		bio_pack_str(w, spec->modalities[m]);
	bio_pack_kv_str(w, "fusion", bio_fusion_name(spec->fusion));
	bio_pack_kv_int(w, "topk", in->topk);
	bio_pack_str(w, "embeddings");
	bio_pack_bool(w, in->embeddings);
	bio_pack_kv_int(w, "embedding_dim", in->e.emb_dim);
	bio_pack_kv_int(w, "fused_dim", in->e.fused_dim);
	bio_pack_kv_int(w, "epoch", epoch);
}

/* The checkpoint file of -m MODEL (new): the path itself, or for models:/ and runs:/ the file
 * the tracking store resolves it to (from a server, downloaded into tracking.cache_dir). */
static char *model_file(struct bio_tool *t, const char *model_arg)
{
	struct bio_error err = {0};
	char *path = NULL;
	if (strncmp(model_arg, "models:/", 8) == 0 || strncmp(model_arg, "runs:/", 6) == 0) {
		const char *uri;
		struct bio_track_opts topts;
		if (bio_config_get_str(t->cfg, "tracking.uri", &uri, &err) < 0 ||
		    bio_track_opts_from_config(&topts, t->cfg, &err) < 0 ||
		    bio_track_resolve_model_opts(&path, uri, &topts, model_arg, &err) < 0)
			bio_tool_die_err(t, &err);
	} else if (!(path = strdup(model_arg))) {
		bio_tool_die(t, "out of memory");
	}
	return path;
}

/* Queues record rec of r (one of the samples to predict) in the pending batch. */
static void queue_sample(struct infer *in, struct bio_stream_reader *r, const struct bio_header *h,
			 const struct bio_value *rec)
{
	struct bio_tool *t = in->t;
	struct bio_error err = {0};
	const struct bio_model_spec *spec = &in->e.model->spec;
	const char *id;
	size_t id_len;
	int64_t label = -1;
	if (bio_record_get_str(&id, &id_len, r, rec, "id", &err) < 0)
		bio_tool_die_err(t, &err);
	/* no label: unknown (-1 in the predictions); a label present is a class index */
	if (bio_value_get(rec, "label") &&
	    bio_record_get_label(&label, h, r, rec, "label", 0, &err) < 0)
		bio_tool_die_err(t, &err);
	if (label >= spec->n_classes)
		bio_tool_die(t, "%s: record %llu: key 'label': label %lld outside the model's %d "
			     "classes", bio_stream_reader_source(r),
			     (unsigned long long)bio_stream_reader_record_index(r), (long long)label,
			     spec->n_classes);
	int slot = in->n_pending;
	for (int m = 0; m < spec->n_mod; m++) {
		struct bio_tensor tv;
		if (bio_record_get_sample(&tv, h, r, rec, spec->modalities[m], 0, &err) < 0)
			bio_tool_die_err(t, &err);
		memcpy(in->e.inputs[m] + (size_t)slot * in->e.pixels, tv.data, tv.data_bytes);
	}
	in->ids[slot] = strndup(id, id_len);
	if (!in->ids[slot])
		bio_tool_die(t, "out of memory");
	in->true_labels[slot] = label;
	in->n_pending++;
	if (in->n_pending == in->e.batch_size)
		flush_batch(in);
}

/* Every sample of r in the shard and split (NULL: all) through the model and out; returns the
 * number predicted. */
static uint64_t predict_all(struct infer *in, struct bio_stream_reader *r,
			    const struct bio_header *h, const char *split, long long shard_i,
			    long long shard_n)
{
	struct bio_error err = {0};
	in->true_labels = calloc((size_t)in->e.batch_size, sizeof(int64_t));
	in->ids = calloc((size_t)in->e.batch_size, sizeof(char *));
	in->order = calloc((size_t)in->e.n_classes, sizeof(int));
	in->probs = calloc((size_t)in->e.n_classes, sizeof(double));
	if (!in->true_labels || !in->ids || !in->order || !in->probs)
		bio_tool_die(in->t, "out of memory");
	uint64_t n_seen = 0, n_written = 0;
	const struct bio_value *rec;
	while ((rec = bio_tool_next_record(in->t, r))) {
		if ((long long)(n_seen++ % (uint64_t)shard_n) != shard_i)
			continue;
		int rc = bio_record_in_split(r, rec, split, &err);
		if (rc < 0)
			bio_tool_die_err(in->t, &err);
		if (rc == 0)
			continue;
		queue_sample(in, r, h, rec);
		bio_tool_progress(in->t, "samples", ++n_written, 0);
	}
	flush_batch(in);
	return n_written;
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
	const char *model_arg = NULL;
	long long shard_i = 0, shard_n = 1;
	int csv = 0, opt;

	bio_tool_init(&t, "bio-infer", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "m:s:b:k:e", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'm':
			model_arg = optarg;
			break;
		case 's':
			bio_tool_option_key(&t, "--split", "infer.split", optarg);
			break;
		case 'b':
			bio_tool_parse_count(&t, "--batch-size", optarg, 1, 4096);
			bio_tool_option_key(&t, "--batch-size", "infer.batch_size", optarg);
			break;
		case 'k':
			bio_tool_parse_count(&t, "--topk", optarg, 1, 64);
			bio_tool_option_key(&t, "--topk", "infer.topk", optarg);
			break;
		case 'e':
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
	bio_tool_kernels_init(&t);
	if (!model_arg)
		bio_tool_usage_error(&t, "no model given (-m CHECKPOINT or -m models:/NAME/VERSION)");
	/* the options are --sets of these keys (bio_tool_option_key): the config holds what runs */
	int64_t batch_size, topk;
	int embeddings;
	const char *split;
	if (bio_config_get_int_range(t.cfg, "infer.batch_size", 1, 4096, &batch_size, &err) < 0 ||
	    bio_config_get_int_range(t.cfg, "infer.topk", 1, 64, &topk, &err) < 0 ||
	    bio_config_get_bool(t.cfg, "infer.embeddings", &embeddings, &err) < 0 ||
	    bio_config_get_str(t.cfg, "infer.split", &split, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (!split[0])
		split = NULL;

	char *model_path = model_file(&t, model_arg);
	/* Threads work on different samples, each with its own copy of the model; OpenBLAS runs
	 * single-threaded inside them so the thread budget is not exceeded. */
	bio_nn_set_threads(1);
	struct infer in = {.t = &t, .topk = (int)topk, .embeddings = embeddings, .csv = csv};
	struct bio_ckpt_meta meta;
	memset(&meta, 0, sizeof meta);
	struct bio_model *model;
	if (bio_checkpoint_load(&model, NULL, NULL, &meta, model_path,
				bio_infer_group((int)batch_size, t.n_threads), &err) < 0 ||
	    bio_infer_init(&in.e, model, (int)batch_size, t.n_threads, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (t.verbose && !meta.checksummed)
		fprintf(stderr, "bio-infer: %s: no checksums (written before checkpoints had them): "
			"loaded unchecked\n", model_path);
	const struct bio_model_spec *spec = &in.e.model->spec;
	in.labels = meta.labels;
	in.n_labels = meta.n_labels;
	if (in.n_labels != (size_t)spec->n_classes)
		bio_tool_die(&t, "%s: %zu label names for %d classes", model_path, in.n_labels,
			     spec->n_classes);
	if (in.topk > spec->n_classes)
		in.topk = spec->n_classes;

	/* Inputs. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	struct bio_header sh;
	if (bio_header_read(&sh, r, "samples", BIO_HEADER_MODALITIES | BIO_HEADER_SHAPE, &err) < 0)
		bio_tool_die_err(&t, &err);
	check_samples_meta(&in, r, &sh, model_path);

	/* Output header. */
	in.out = csv ? bio_tool_output_open(&t) : bio_tool_output_open_stream(&t);
	write_header(&in, model_arg, meta.epoch);

	/* Batches of samples through the model. */
	uint64_t n_written = predict_all(&in, r, &sh, split, shard_i, shard_n);
	bio_tool_progress_end(&t);
	if (!csv && bio_stream_finish(in.w, 0, NULL, NULL, &err) < 0)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE (reader went away): exits 0 quietly */
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr, "bio-infer: %llu predictions\n", (unsigned long long)n_written);
	bio_stream_writer_free(in.w);
	bio_header_destroy(&sh);
	bio_stream_reader_free(r);
	free(in.true_labels);
	free(in.ids);
	free(in.order);
	free(in.probs);
	bio_infer_destroy(&in.e);
	bio_ckpt_meta_destroy(&meta);
	free(model_path);
	bio_config_free(t.cfg);
	return BIO_EXIT_OK;
}
