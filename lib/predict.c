/* bio-infer's engine: a checkpoint through bio_infer over a samples stream, each batch's results
 * written as predictions records or CSV rows (see predict.h). */
#include "bio/predict.h"

#include <stdlib.h>
#include <string.h>

#include "bio/checkpoint.h"
#include "bio/csv.h"
#include "bio/infer.h"
#include "bio/model.h"
#include "bio/nn.h"
#include "bio/track.h"
#include "free_list.h"

#ifndef BIO_VERSION
#define BIO_VERSION "0.1.0"
#endif

struct bio_predict {
	struct bio_predict_opts o;
	struct bio_infer e;  /* the model's workers and the batch's inputs and results */
	struct bio_ckpt_meta meta; /* the label names, the epoch */
	int64_t *true_labels; /* [batch] */
	char **ids;           /* [batch] */
	int n_pending;
	struct bio_stream_writer *w;
	FILE *out;
	int *order;           /* top-k scratch [n_classes] */
	double *probs;        /* softmax scratch [n_classes] */
};

int bio_predict_opts_from_config(struct bio_predict_opts *o, const struct bio_config *cfg,
				 struct bio_error *err)
{
	int64_t batch_size, topk;
	if (bio_config_get_int_range(cfg, "infer.batch_size", 1, 4096, &batch_size, err) < 0 ||
	    bio_config_get_int_range(cfg, "infer.topk", 1, 64, &topk, err) < 0 ||
	    bio_config_get_bool(cfg, "infer.embeddings", &o->embeddings, err) < 0 ||
	    bio_config_get_str(cfg, "infer.split", &o->split, err) < 0)
		return err ? err->code : BIO_EINVAL;
	if (!o->split[0])
		o->split = NULL;
	o->batch_size = (int)batch_size;
	o->topk = (int)topk;
	return 0;
}

int bio_predict_model_file(char **path, const struct bio_config *cfg, const char *model,
			   struct bio_error *err)
{
	*path = NULL;
	if (strncmp(model, "models:/", 8) == 0 || strncmp(model, "runs:/", 6) == 0) {
		const char *uri;
		struct bio_track_opts topts;
		int rc;
		if ((rc = bio_config_get_str(cfg, "tracking.uri", &uri, err)) < 0 ||
		    (rc = bio_track_opts_from_config(&topts, cfg, err)) < 0 ||
		    (rc = bio_track_resolve_model_opts(path, uri, &topts, model, err)) < 0)
			return rc;
	} else if (!(*path = strdup(model))) {
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	}
	return 0;
}

struct bio_predict *bio_predict_new(const char *path, const struct bio_predict_opts *o,
				    struct bio_error *err)
{
	struct bio_predict *p = calloc(1, sizeof *p);
	if (!p) {
		bio_error_set(err, BIO_ENOMEM, "out of memory");
		return NULL;
	}
	p->o = *o;
	/* Threads work on different samples, each with its own copy of the model; OpenBLAS runs
	 * single-threaded inside them so the thread budget is not exceeded. */
	bio_nn_set_threads(1);
	struct bio_model *model;
	if (bio_checkpoint_load(&model, NULL, NULL, &p->meta, path,
				bio_infer_group(o->batch_size, o->n_threads), err) < 0 ||
	    bio_infer_init(&p->e, model, o->batch_size, o->n_threads, err) < 0) {
		bio_predict_free(p);
		return NULL;
	}
	if (o->verbose && !p->meta.checksummed && o->hooks.say) {
		char msg[BIO_ERROR_MSG_MAX];
		snprintf(msg, sizeof msg, "%s: no checksums (written before checkpoints had them): "
			 "loaded unchecked", path);
		o->hooks.say(o->hooks.ud, msg);
	}
	const struct bio_model_spec *spec = &p->e.model->spec;
	if (p->meta.n_labels != (size_t)spec->n_classes) {
		bio_error_set(err, BIO_EFORMAT, "%s: %zu label names for %d classes", path,
			      p->meta.n_labels, spec->n_classes);
		bio_predict_free(p);
		return NULL;
	}
	if (p->o.topk > spec->n_classes)
		p->o.topk = spec->n_classes;
	return p;
}

void bio_predict_free(struct bio_predict *p)
{
	if (!p)
		return;
	for (int i = 0; p->ids && i < p->n_pending; i++)
		free(p->ids[i]);
	bio_stream_writer_free(p->w);
	BIO_FREE(p->true_labels, p->ids, p->order, p->probs);
	bio_infer_destroy(&p->e);
	bio_ckpt_meta_destroy(&p->meta);
	free(p);
}

int bio_predict_check_samples(struct bio_predict *p, struct bio_stream_reader *r,
			      const struct bio_header *h, const char *model_name,
			      struct bio_error *err)
{
	const struct bio_model_spec *spec = &p->e.model->spec;
	const char *src = bio_stream_reader_source(r);
	for (int b = 0; b < spec->n_mod; b++)
		if (bio_header_modality(h, spec->modalities[b]) < 0)
			return bio_error_set(err, BIO_EFORMAT, "%s: the samples carry no modality "
					     "'%s' that the model %s needs (scan.modalities of the "
					     "samples, model.modalities of the model)", src,
					     spec->modalities[b], model_name);
	if (h->shape[1] != spec->input_size || h->shape[2] != spec->input_size)
		return bio_error_set(err, BIO_EFORMAT, "%s: header meta 'shape': the samples are "
				     "%lldx%lld, the model %s takes %dx%d (prep.size of the "
				     "samples, model.input_size of the model)", src,
				     (long long)h->shape[2], (long long)h->shape[1], model_name,
				     spec->input_size, spec->input_size);
	if (!h->labels)
		return 0; /* unlabelled samples: nothing to compare */
	char what[512];
	snprintf(what, sizeof what, "%s: the samples against the model %s (labels come from "
		 "bio-scan: scan.identity, scan.root)", src, model_name);
	return bio_header_same_labels(h, p->meta.labels, p->meta.n_labels, what, err);
}

int bio_predict_write_header(struct bio_predict *p, FILE *out, const char *out_name,
			     const char *model, struct bio_error *err)
{
	const struct bio_model_spec *spec = &p->e.model->spec;
	p->out = out;
	if (p->o.csv) {
		fputs("id,label,label_name,pred,pred_name,score,topk,topk_scores", out);
		if (p->o.embeddings) {
			for (int m = 0; m < spec->n_mod; m++)
				fprintf(out, ",emb_%s", spec->modalities[m]);
			fputs(",emb_fused", out);
		}
		fputc('\n', out);
		return 0;
	}
	struct bio_stream_writer *w = p->w = bio_stream_writer_new(out, err);
	if (!w)
		return err ? err->code : BIO_ENOMEM;
	bio_stream_writer_set_name(w, out_name);
	bio_stream_begin_header(w, "predictions");
	bio_pack_map(w, 11);
	bio_pack_kv_str(w, "program", "bio-infer");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_kv_str(w, "model", model);
	bio_pack_str(w, "labels");
	bio_pack_array(w, p->meta.n_labels);
	for (size_t i = 0; i < p->meta.n_labels; i++)
		bio_pack_str(w, p->meta.labels[i]);
	bio_pack_str(w, "modalities");
	bio_pack_array(w, (size_t)spec->n_mod);
	for (int m = 0; m < spec->n_mod; m++)
		bio_pack_str(w, spec->modalities[m]);
	bio_pack_kv_str(w, "fusion", bio_fusion_name(spec->fusion));
	bio_pack_kv_int(w, "topk", p->o.topk);
	bio_pack_str(w, "embeddings");
	bio_pack_bool(w, p->o.embeddings);
	bio_pack_kv_int(w, "embedding_dim", p->e.emb_dim);
	bio_pack_kv_int(w, "fused_dim", p->e.fused_dim);
	bio_pack_kv_int(w, "epoch", p->meta.epoch);
	return 0;
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

/* Sample i of the batch as a CSV row: pred its class, top_idx and top_score its top-k. */
static void write_csv_row(struct bio_predict *p, int i, int pred, const int64_t *top_idx,
			  const float *top_score)
{
	const struct bio_infer *e = &p->e;
	FILE *f = p->out;
	int64_t label = p->true_labels[i];
	bio_csv_put_field(f, p->ids[i]);
	fprintf(f, ",%lld,", (long long)label);
	if (label >= 0)
		bio_csv_put_field(f, p->meta.labels[label]);
	fprintf(f, ",%d,", pred);
	bio_csv_put_field(f, p->meta.labels[pred]);
	fputc(',', f);
	bio_csv_put_float(f, top_score[0]);
	fputc(',', f);
	for (int j = 0; j < p->o.topk; j++)
		fprintf(f, "%s%lld", j ? ";" : "", (long long)top_idx[j]);
	csv_vector(f, top_score, p->o.topk);
	if (p->o.embeddings) {
		for (int b = 0; b < e->n_mod; b++)
			csv_vector(f, e->emb[b] + (size_t)i * e->emb_dim, e->emb_dim);
		csv_vector(f, e->fused + (size_t)i * e->fused_dim, e->fused_dim);
	}
	fputc('\n', f);
}

/* The same as a predictions record. */
static void write_record(struct bio_predict *p, int i, int pred, int64_t *top_idx,
			 const float *top_score)
{
	const struct bio_infer *e = &p->e;
	struct bio_stream_writer *w = p->w;
	int n_mod = e->n_mod;
	bio_stream_begin_record(w);
	bio_pack_map(w, 7 + (p->o.embeddings ? (size_t)n_mod + 1 + (e->has_alpha != 0) : 0));
	bio_pack_kv_str(w, "id", p->ids[i]);
	bio_pack_kv_int(w, "label", p->true_labels[i]);
	bio_pack_kv_int(w, "pred", pred);
	bio_pack_kv_str(w, "pred_name", p->meta.labels[pred]);
	bio_pack_kv_double(w, "score", (double)top_score[0]);
	struct bio_tensor t;
	int64_t shape[1] = {p->o.topk};
	bio_tensor_view(&t, BIO_DTYPE_I64, 1, shape, top_idx);
	bio_pack_str(w, "topk");
	bio_pack_tensor(w, &t);
	pack_vector(w, "topk_scores", top_score, p->o.topk);
	if (!p->o.embeddings)
		return;
	char key[64];
	for (int b = 0; b < n_mod; b++) {
		snprintf(key, sizeof key, "emb_%s", e->model->spec.modalities[b]);
		pack_vector(w, key, e->emb[b] + (size_t)i * e->emb_dim, e->emb_dim);
	}
	pack_vector(w, "emb_fused", e->fused + (size_t)i * e->fused_dim, e->fused_dim);
	if (e->has_alpha)
		pack_vector(w, "fusion_weights", e->alpha + (size_t)i * n_mod, n_mod);
}

/* Runs the pending batch through the model and writes one prediction per sample. */
static void flush_batch(struct bio_predict *p)
{
	int n = p->n_pending;
	if (n == 0)
		return;
	struct bio_infer *e = &p->e;
	bio_infer_run(e, n);
	int64_t top_idx[64];
	float top_score[64];
	for (int i = 0; i < n; i++) {
		const float *logits = e->logits + (size_t)i * e->n_classes;
		bio_infer_softmax(p->probs, logits, e->n_classes);
		bio_infer_top_k(p->order, p->probs, e->n_classes, p->o.topk);
		for (int j = 0; j < p->o.topk; j++) {
			top_idx[j] = p->order[j];
			top_score[j] = (float)p->probs[p->order[j]];
		}
		if (p->o.csv)
			write_csv_row(p, i, p->order[0], top_idx, top_score);
		else
			write_record(p, i, p->order[0], top_idx, top_score);
		free(p->ids[i]);
		p->ids[i] = NULL;
	}
	p->n_pending = 0;
}

/* Queues record rec of r (one of the samples to predict) in the pending batch. */
static int queue_sample(struct bio_predict *p, struct bio_stream_reader *r,
			const struct bio_header *h, const struct bio_value *rec,
			struct bio_error *err)
{
	const struct bio_model_spec *spec = &p->e.model->spec;
	const char *id;
	size_t id_len;
	int64_t label = -1;
	int rc;
	if ((rc = bio_record_get_str(&id, &id_len, r, rec, "id", err)) < 0)
		return rc;
	/* no label: unknown (-1 in the predictions); a label present is a class index */
	if (bio_value_get(rec, "label") &&
	    (rc = bio_record_get_label(&label, h, r, rec, "label", 0, err)) < 0)
		return rc;
	if (label >= spec->n_classes)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key 'label': label %lld "
				     "outside the model's %d classes", bio_stream_reader_source(r),
				     (unsigned long long)bio_stream_reader_record_index(r),
				     (long long)label, spec->n_classes);
	int slot = p->n_pending;
	for (int m = 0; m < spec->n_mod; m++) {
		struct bio_tensor tv;
		if ((rc = bio_record_get_sample(&tv, h, r, rec, spec->modalities[m], 0, err)) < 0)
			return rc;
		memcpy(p->e.inputs[m] + (size_t)slot * p->e.pixels, tv.data, tv.data_bytes);
	}
	p->ids[slot] = strndup(id, id_len);
	if (!p->ids[slot])
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	p->true_labels[slot] = label;
	p->n_pending++;
	if (p->n_pending == p->e.batch_size)
		flush_batch(p);
	return 0;
}

int bio_predict_all(struct bio_predict *p, struct bio_stream_reader *r, const struct bio_header *h,
		    uint64_t *n_written, struct bio_error *err)
{
	const struct bio_predict_opts *o = &p->o;
	*n_written = 0;
	p->true_labels = calloc((size_t)p->e.batch_size, sizeof(int64_t));
	p->ids = calloc((size_t)p->e.batch_size, sizeof(char *));
	p->order = calloc((size_t)p->e.n_classes, sizeof(int));
	p->probs = calloc((size_t)p->e.n_classes, sizeof(double));
	if (!p->true_labels || !p->ids || !p->order || !p->probs)
		return bio_error_set(err, BIO_ENOMEM, "out of memory");
	uint64_t n_seen = 0;
	const struct bio_value *rec;
	int rc;
	while ((rc = bio_stream_read_record(r, &rec, err)) == 1) {
		if ((long long)(n_seen++ % (uint64_t)o->shard_n) != o->shard_i)
			continue;
		rc = bio_record_in_split(r, rec, o->split, err);
		if (rc < 0)
			return rc;
		if (rc == 0)
			continue;
		if ((rc = queue_sample(p, r, h, rec, err)) < 0)
			return rc;
		++*n_written;
		if (o->hooks.progress)
			o->hooks.progress(o->hooks.ud, *n_written);
	}
	if (rc < 0)
		return rc;
	flush_batch(p);
	return 0;
}

int bio_predict_finish(struct bio_predict *p, struct bio_error *err)
{
	return p->o.csv ? 0 : bio_stream_finish(p->w, 0, NULL, NULL, err);
}
