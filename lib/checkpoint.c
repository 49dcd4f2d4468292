/* Checkpoint files (see bio/checkpoint.h): writing through the bio-stream writer to a temp file
 * that is fsynced and renamed into place, and reading back with full validation of the meta and
 * of every tensor's name, dtype and shape against the model the meta describes. */
#include "bio/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bio/crc32c.h"
#include "bio/fs.h"
#include "bio/header.h"
#include "bio/stale.h"
#include "bio/stream.h"
#include "free_list.h"

void bio_optim_bind(struct bio_optim *o, struct bio_model *m)
{
	o->n = m->n_params;
	o->m = m->moments;
	o->v = m->moments + m->n_params;
}

void bio_ckpt_meta_destroy(struct bio_ckpt_meta *meta)
{
	if (!meta)
		return;
	bio_free_strs(meta->labels, meta->n_labels);
	free(meta->config_yaml);
	meta->labels = NULL;
	meta->n_labels = 0;
	meta->config_yaml = NULL;
}

/* ---- writing ---- */

static void pack_spec(struct bio_stream_writer *w, const struct bio_model_spec *s)
{
	bio_pack_str(w, "model");
	bio_pack_map(w, 14);
	bio_pack_kv_int(w, "input_size", s->input_size);
	bio_pack_str(w, "channels");
	bio_pack_array(w, (size_t)s->n_blocks);
	for (int i = 0; i < s->n_blocks; i++)
		bio_pack_int(w, s->channels[i]);
	bio_pack_kv_int(w, "kernel", s->kernel);
	bio_pack_kv_int(w, "hidden", s->hidden);
	bio_pack_kv_int(w, "embedding", s->embedding);
	bio_pack_kv_double(w, "dropout", s->dropout);
	bio_pack_kv_str(w, "fusion", bio_fusion_name(s->fusion));
	bio_pack_kv_double(w, "attention_temperature", s->attention_temperature);
	bio_pack_str(w, "modalities");
	bio_pack_array(w, (size_t)s->n_mod);
	for (int i = 0; i < s->n_mod; i++)
		bio_pack_str(w, s->modalities[i]);
	bio_pack_kv_int(w, "n_classes", s->n_classes);
	/* the fused embedding is a sum of L2-normalised embeddings (attention, weighted): a
	 * checkpoint without this key is one of the raw-sum weighted fusion before it */
	bio_pack_str(w, "fusion_normalized");
	bio_pack_bool(w, s->fusion != BIO_FUSION_CONCAT);
	bio_pack_kv_str(w, "loss", bio_loss_name(s->loss));
	bio_pack_kv_double(w, "margin", s->margin);
	bio_pack_kv_double(w, "scale", s->scale);
}

static void pack_u64_hex(struct bio_stream_writer *w, uint64_t v)
{
	char buf[17];
	snprintf(buf, sizeof buf, "%016" PRIx64, v);
	bio_pack_str(w, buf);
}

/* CRC-32C of a checkpoint record: the name (with its NUL), the dtype name, the rank and each
 * dimension as 8 bytes little-endian, then the data bytes. */
static uint32_t tensor_crc(const char *name, const struct bio_tensor *t)
{
	uint32_t c = bio_crc32c(0, name, strlen(name) + 1);
	const char *dt = bio_dtype_name(t->dtype);
	c = bio_crc32c(c, dt, strlen(dt) + 1);
	unsigned char dims[8 * (BIO_TENSOR_MAX_DIMS + 1)];
	size_t n = 0;
	for (int i = -1; i < t->n_dims; i++) {
		uint64_t v = i < 0 ? (uint64_t)t->n_dims : (uint64_t)t->shape[i];
		for (int k = 0; k < 8; k++)
			dims[n++] = (unsigned char)(v >> (8 * k));
	}
	c = bio_crc32c(c, dims, n);
	return bio_crc32c(c, t->data, t->data_bytes);
}

static int pack_record(struct bio_stream_writer *w, const char *name, enum bio_dtype dt,
		       int n_dims, const int64_t *shape, const void *data, size_t numel,
		       uint16_t *half_buf)
{
	struct bio_tensor t;
	const void *d = data;
	if (dt == BIO_DTYPE_F16) {
		const float *f = data;
		for (size_t i = 0; i < numel; i++)
			half_buf[i] = bio_f32_to_f16(f[i]);
		d = half_buf;
	}
	bio_tensor_view(&t, dt, n_dims, shape, (void *)d);
	bio_stream_begin_record(w);
	bio_pack_map(w, 3);
	bio_pack_kv_str(w, "name", name);
	bio_pack_str(w, "tensor");
	bio_pack_tensor(w, &t);
	return bio_pack_kv_int(w, "crc32c", tensor_crc(name, &t));
}

/* The header meta of a checkpoint (packed twice: once to checksum it, once into the file). */
static void pack_meta(struct bio_stream_writer *w, const struct bio_model *m,
		      const struct bio_optim *o, const struct bio_sched *s,
		      const struct bio_ckpt_meta *meta)
{
	bio_pack_map(w, 15 + (meta->config_yaml != NULL));
	bio_pack_kv_str(w, "checksum", "crc32c");
	bio_pack_kv_str(w, "program", "bio-train");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	pack_spec(w, &m->spec);
	bio_pack_str(w, "labels");
	bio_pack_array(w, meta->n_labels);
	for (size_t i = 0; i < meta->n_labels; i++)
		bio_pack_str(w, meta->labels[i]);
	bio_pack_kv_int(w, "epoch", meta->epoch);
	bio_pack_kv_int(w, "step", meta->step);
	bio_pack_str(w, "seed");
	pack_u64_hex(w, meta->seed);
	bio_pack_str(w, "rng");
	bio_pack_array(w, 4);
	for (int i = 0; i < 4; i++)
		pack_u64_hex(w, meta->rng[i]);
	bio_pack_str(w, "optimizer");
	if (o) {
		bio_pack_map(w, 9);
		bio_pack_kv_str(w, "kind", bio_optim_name(o->kind));
		bio_pack_kv_double(w, "lr", o->lr);
		bio_pack_kv_int(w, "step", o->step);
		bio_pack_kv_double(w, "momentum", o->momentum);
		bio_pack_kv_int(w, "nesterov", o->nesterov);
		bio_pack_kv_double(w, "weight_decay", o->weight_decay);
		bio_pack_kv_double(w, "beta1", o->beta1);
		bio_pack_kv_double(w, "beta2", o->beta2);
		bio_pack_kv_double(w, "eps", o->eps);
	} else {
		bio_pack_nil(w);
	}
	bio_pack_str(w, "scheduler");
	if (s) {
		bio_pack_map(w, 13);
		bio_pack_kv_str(w, "kind", bio_sched_name(s->kind));
		bio_pack_kv_double(w, "base_lr", s->base_lr);
		bio_pack_kv_double(w, "lr", s->lr);
		bio_pack_kv_int(w, "epoch", s->epoch);
		bio_pack_kv_int(w, "step_size", s->step_size);
		bio_pack_kv_double(w, "gamma", s->gamma);
		bio_pack_kv_int(w, "t_max", s->t_max);
		bio_pack_kv_double(w, "min_lr", s->min_lr);
		bio_pack_kv_int(w, "plateau_max", s->plateau_max);
		bio_pack_kv_double(w, "factor", s->factor);
		bio_pack_kv_int(w, "patience", s->patience);
		bio_pack_kv_double(w, "best", s->best);
		bio_pack_kv_int(w, "num_bad", s->num_bad);
	} else {
		bio_pack_nil(w);
	}
	bio_pack_str(w, "early_stopping");
	bio_pack_map(w, 3);
	bio_pack_kv_double(w, "best", meta->best_metric);
	bio_pack_kv_int(w, "best_epoch", meta->best_epoch);
	bio_pack_kv_int(w, "bad_epochs", meta->bad_epochs);
	bio_pack_kv_double(w, "val_loss", meta->val_loss);
	bio_pack_kv_double(w, "val_accuracy", meta->val_accuracy);
	bio_pack_str(w, "half");
	bio_pack_bool(w, meta->half);
	if (meta->config_yaml)
		bio_pack_kv_str(w, "config", meta->config_yaml);

}

/* CRC-32C of the msgpack encoding of a meta value (as bio_pack_value writes it: the same bytes
 * as pack_meta's for a meta read back from a checkpoint). Returns 0 or BIO_ENOMEM/BIO_EIO. */
static int meta_crc(uint32_t *out, const struct bio_model *m, const struct bio_optim *o,
		    const struct bio_sched *s, const struct bio_ckpt_meta *meta,
		    const struct bio_value *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return BIO_ENOMEM;
	struct bio_stream_writer *w = bio_stream_writer_new(f, NULL);
	int rc = w ? 0 : BIO_ENOMEM;
	if (w && v)
		rc = bio_pack_value(w, v);
	else if (w)
		pack_meta(w, m, o, s, meta);
	bio_stream_writer_free(w);
	if (fclose(f) != 0 && rc == 0)
		rc = BIO_EIO;
	if (rc == 0)
		*out = bio_crc32c(0, buf, len);
	free(buf);
	return rc;
}

static int write_stream(FILE *f, const char *path, const struct bio_model *m,
			const struct bio_optim *o, const struct bio_sched *s,
			const struct bio_ckpt_meta *meta, struct bio_error *err)
{
	struct bio_stream_writer *w = bio_stream_writer_new(f, err);
	if (!w)
		return err ? err->code : BIO_ENOMEM;
	bio_stream_writer_set_name(w, path);
	int rc = 0;
	uint16_t *half_buf = NULL;
	if (meta->half) {
		size_t mx = 1;
		for (size_t i = 0; i < m->n_tensors; i++)
			if (m->tensors[i].numel > mx)
				mx = m->tensors[i].numel;
		half_buf = malloc(mx * sizeof(uint16_t));
		if (!half_buf) {
			rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
			goto out;
		}
	}
	uint32_t mcrc;
	if ((rc = meta_crc(&mcrc, m, o, s, meta, NULL)) < 0) {
		rc = bio_error_set(err, rc, "%s: out of memory", path);
		goto out;
	}
	bio_stream_begin_header(w, "checkpoint");
	pack_meta(w, m, o, s, meta);

	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct bio_model_tensor *t = &m->tensors[i];
		if (t->role == BIO_ROLE_COUNT)
			pack_record(w, t->name, BIO_DTYPE_I64, 0, t->shape, t->count, 1, NULL);
		else
			pack_record(w, t->name, meta->half ? BIO_DTYPE_F16 : BIO_DTYPE_F32, t->n_dims,
				    t->shape, t->data, t->numel, half_buf);
	}
	if (o) {
		char name[BIO_MODEL_NAME_MAX + 32];
		for (size_t i = 0; i < m->n_tensors; i++) {
			const struct bio_model_tensor *t = &m->tensors[i];
			if (t->role != BIO_ROLE_PARAM)
				continue;
			if (o->kind == BIO_OPTIM_SGD) {
				snprintf(name, sizeof name, "optimizer.%s.momentum_buffer", t->name);
				pack_record(w, name, BIO_DTYPE_F32, t->n_dims, t->shape,
					    o->m + t->offset, t->numel, NULL);
			} else {
				snprintf(name, sizeof name, "optimizer.%s.exp_avg", t->name);
				pack_record(w, name, BIO_DTYPE_F32, t->n_dims, t->shape,
					    o->m + t->offset, t->numel, NULL);
				snprintf(name, sizeof name, "optimizer.%s.exp_avg_sq", t->name);
				pack_record(w, name, BIO_DTYPE_F32, t->n_dims, t->shape,
					    o->v + t->offset, t->numel, NULL);
			}
		}
	}
	const char *const keys[1] = {"meta_crc32c"};
	const int64_t vals[1] = {(int64_t)mcrc};
	rc = bio_stream_finish(w, 1, keys, vals, err);
out:
	free(half_buf);
	bio_stream_writer_free(w);
	return rc;
}

/* Removes "<path>.tmp.<PID>" files left by processes that died while writing path (kill -9 in
 * the middle of a save); a live PID, even a reused one, keeps its file. */
static void remove_stale_temps(const char *path)
{
	char *dcopy = strdup(path), *bcopy = strdup(path), *prefix = NULL;
	if (dcopy && bcopy && (prefix = malloc(strlen(path) + 8))) {
		sprintf(prefix, "%s.tmp.", basename(bcopy));
		bio_remove_stale_temps(dirname(dcopy), prefix);
	}
	free(prefix);
	free(dcopy);
	free(bcopy);
}

int bio_checkpoint_save(const char *path, const struct bio_model *m, const struct bio_optim *o,
			const struct bio_sched *s, const struct bio_ckpt_meta *meta,
			struct bio_error *err)
{
	remove_stale_temps(path);
	size_t len = strlen(path);
	char *tmp = malloc(len + 32);
	if (!tmp)
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
	snprintf(tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
	int rc = 0;
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = write_stream(f, path, m, o, s, meta, err);
	if (rc) { /* the message names path */
		fclose(f);
		unlink(tmp);
		goto out;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		fclose(f);
		unlink(tmp);
		goto out;
	}
	if (fclose(f) != 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: rename: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	bio_fs_sync_dir(path); /* make the rename durable */
out:
	free(tmp);
	return rc;
}

/* The copy fallback: from's bytes into "to.tmp.PID", fsync, rename over to. */
static int copy_file_atomic(const char *from, const char *to, const char *tmp,
			    struct bio_error *err)
{
	FILE *in = fopen(from, "rb"), *out = in ? fopen(tmp, "wb") : NULL;
	int rc = 0;
	if (!in || !out) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", in ? tmp : from, strerror(errno));
		goto out;
	}
	char buf[1 << 16];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			break;
	if (ferror(in) || ferror(out) || fflush(out) != 0 || fsync(fileno(out)) != 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", to, strerror(errno ? errno : EIO));
		goto out;
	}
	if (fclose(out) != 0) {
		out = NULL;
		rc = bio_error_set(err, BIO_EIO, "%s: %s", to, strerror(errno));
		goto out;
	}
	out = NULL;
	if (rename(tmp, to) != 0)
		rc = bio_error_set(err, BIO_EIO, "%s: rename: %s", to, strerror(errno));
out:
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	if (rc)
		unlink(tmp);
	return rc;
}

int bio_checkpoint_link(const char *from, const char *to, struct bio_error *err)
{
	remove_stale_temps(to);
	size_t len = strlen(to);
	char *tmp = malloc(len + 32);
	if (!tmp)
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", to);
	snprintf(tmp, len + 32, "%s.tmp.%ld", to, (long)getpid());
	unlink(tmp);
	int rc = 0;
	if (link(from, tmp) == 0) {
		if (rename(tmp, to) != 0) {
			rc = bio_error_set(err, BIO_EIO, "%s: rename: %s", to, strerror(errno));
			unlink(tmp);
		}
	} else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EXDEV ||
		   errno == EMLINK) {
		rc = copy_file_atomic(from, to, tmp, err);
	} else {
		rc = bio_error_set(err, BIO_EIO, "%s: link: %s", to, strerror(errno));
	}
	if (rc == 0)
		bio_fs_sync_dir(to);
	free(tmp);
	return rc;
}

/* ---- reading ---- */

static int meta_int(const struct bio_value *map, const char *key, int64_t *out, const char *path,
		    struct bio_error *err)
{
	if (bio_value_int(bio_value_get(map, key), out))
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: '%s' missing or not an integer",
				     path, key);
	return 0;
}

static int meta_double(const struct bio_value *map, const char *key, double *out,
		       const char *path, struct bio_error *err)
{
	if (bio_value_double(bio_value_get(map, key), out))
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: '%s' missing or not a number",
				     path, key);
	return 0;
}

static int meta_u64_hex(const struct bio_value *v, uint64_t *out)
{
	const char *s;
	size_t len;
	char buf[17];
	if (bio_value_str(v, &s, &len) || len != 16)
		return -1;
	memcpy(buf, s, 16);
	buf[16] = 0;
	char *end;
	*out = strtoull(buf, &end, 16);
	return *end ? -1 : 0;
}

static int read_spec(struct bio_model_spec *sp, const struct bio_value *mv, const char *path,
		     struct bio_error *err)
{
	int64_t v;
	double d;
	int rc;
	memset(sp, 0, sizeof *sp);
	if (!mv || bio_value_type(mv) != BIO_V_MAP)
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta has no model map", path);
	if ((rc = meta_int(mv, "input_size", &v, path, err)))
		return rc;
	sp->input_size = v > 0 && v <= 1024 ? (int)v : -1;
	if ((rc = meta_int(mv, "kernel", &v, path, err)))
		return rc;
	sp->kernel = v > 0 && v < 16 ? (int)v : -1;
	if ((rc = meta_int(mv, "hidden", &v, path, err)))
		return rc;
	sp->hidden = v > 0 && v <= 65536 ? (int)v : -1;
	if ((rc = meta_int(mv, "embedding", &v, path, err)))
		return rc;
	sp->embedding = v > 0 && v <= 65536 ? (int)v : -1;
	if ((rc = meta_int(mv, "n_classes", &v, path, err)))
		return rc;
	sp->n_classes = v >= 0 && v <= 1000000 ? (int)v : -1;
	if ((rc = meta_double(mv, "dropout", &d, path, err)))
		return rc;
	sp->dropout = (float)d;
	const struct bio_value *ch = bio_value_get(mv, "channels");
	size_t nb = bio_value_type(ch) == BIO_V_ARRAY ? bio_value_len(ch) : 0;
	if (nb < 1 || nb > BIO_MODEL_MAX_BLOCKS)
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: bad model channels", path);
	sp->n_blocks = (int)nb;
	for (size_t i = 0; i < nb; i++) {
		if (bio_value_int(bio_value_at(ch, i), &v) || v < 1 || v > 4096)
			return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: bad model channels",
					     path);
		sp->channels[i] = (int)v;
	}
	char *fu = bio_value_strdup(bio_value_get(mv, "fusion"));
	rc = !fu || bio_fusion_parse(&sp->fusion, fu);
	free(fu);
	if (rc)
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: bad model fusion", path);
	/* attention fusion reads its temperature; a checkpoint without one holds the unbounded
	 * attention of earlier versions, another network */
	if (!bio_value_double(bio_value_get(mv, "attention_temperature"), &d))
		sp->attention_temperature = (float)d;
	else if (sp->fusion == BIO_FUSION_ATTENTION)
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: attention fusion "
				     "without attention_temperature (a checkpoint of the unbounded "
				     "attention before it: retrain)", path);
	if (sp->fusion == BIO_FUSION_WEIGHTED && !bio_value_get(mv, "fusion_normalized"))
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: weighted fusion without "
				     "fusion_normalized (a checkpoint of the raw-sum weighted fusion "
				     "before it, another network: retrain)", path);
	/* the head: a checkpoint without "loss" is one of the softmax classifier before margin
	 * losses */
	const struct bio_value *lv = bio_value_get(mv, "loss");
	sp->loss = BIO_LOSS_SOFTMAX;
	if (lv) {
		char *ls = bio_value_strdup(lv);
		rc = !ls || bio_loss_parse(&sp->loss, ls);
		free(ls);
		if (rc)
			return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: bad model loss",
					     path);
		if ((rc = meta_double(mv, "margin", &d, path, err)))
			return rc;
		sp->margin = (float)d;
		if ((rc = meta_double(mv, "scale", &d, path, err)))
			return rc;
		sp->scale = (float)d;
	}
	struct bio_header h; /* the model map's modalities: the same checks as a stream header's */
	char src[1100];
	snprintf(src, sizeof src, "%s: checkpoint model", path);
	if ((rc = bio_header_parse(&h, mv, src, BIO_HEADER_MODALITIES, err)))
		return rc;
	if (h.n_mod > BIO_MODEL_MAX_MODS) {
		bio_header_destroy(&h);
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: %d model modalities "
				     "(at most %d)", path, h.n_mod, BIO_MODEL_MAX_MODS);
	}
	sp->n_mod = h.n_mod;
	for (int i = 0; i < h.n_mod; i++) {
		size_t len = strlen(h.modalities[i]);
		if (len >= sizeof sp->modalities[0]) {
			bio_header_destroy(&h);
			return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: model modality "
					     "name too long", path);
		}
		memcpy(sp->modalities[i], h.modalities[i], len + 1);
	}
	bio_header_destroy(&h);
	if ((rc = bio_model_spec_check(sp, err)))
		return bio_error_prefix(err, "%s: checkpoint meta", path);
	return 0;
}

static int read_meta(struct bio_ckpt_meta *meta, struct bio_optim *o, struct bio_sched *s,
		     const struct bio_value *mv, const char *path, struct bio_error *err)
{
	int rc;
	int64_t v;
	memset(meta, 0, sizeof *meta);
	if ((rc = meta_int(mv, "epoch", &meta->epoch, path, err)) ||
	    (rc = meta_int(mv, "step", &meta->step, path, err)))
		return rc;
	if (meta->epoch < 0 || meta->step < 0)
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: negative epoch or step",
				     path);
	const struct bio_value *rng = bio_value_get(mv, "rng");
	if (meta_u64_hex(bio_value_get(mv, "seed"), &meta->seed) ||
	    bio_value_type(rng) != BIO_V_ARRAY || bio_value_len(rng) != 4)
		return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: bad seed or rng", path);
	for (size_t i = 0; i < 4; i++)
		if (meta_u64_hex(bio_value_at(rng, i), &meta->rng[i]))
			return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta: bad rng", path);
	struct bio_header h; /* label names: the same checks as a stream header's */
	if ((rc = bio_header_parse(&h, mv, path, BIO_HEADER_LABELS, err)))
		return rc;
	meta->n_labels = h.n_labels;
	meta->labels = h.labels; /* taken */
	h.labels = NULL;
	h.n_labels = 0;
	bio_header_destroy(&h);
	const struct bio_value *cfg = bio_value_get(mv, "config");
	if (cfg)
		meta->config_yaml = bio_value_strdup(cfg);
	const struct bio_value *es = bio_value_get(mv, "early_stopping");
	if ((rc = meta_double(es, "best", &meta->best_metric, path, err)) ||
	    (rc = meta_int(es, "best_epoch", &meta->best_epoch, path, err)) ||
	    (rc = meta_int(es, "bad_epochs", &meta->bad_epochs, path, err)))
		return rc;
	meta->val_loss = meta->val_accuracy = NAN;
	meta_double(mv, "val_loss", &meta->val_loss, path, NULL);
	meta_double(mv, "val_accuracy", &meta->val_accuracy, path, NULL);
	int half = 0;
	bio_value_bool(bio_value_get(mv, "half"), &half);
	meta->half = half;
	if (o) {
		const struct bio_value *ov = bio_value_get(mv, "optimizer");
		char *kind = bio_value_strdup(bio_value_get(ov, "kind"));
		enum bio_optim_kind k;
		int bad = !kind || bio_optim_parse(&k, kind);
		free(kind);
		if (bad)
			return bio_error_set(err, BIO_EFORMAT, "%s: checkpoint has no optimizer state "
					     "(weights only, as best.ckpt is unless trained with "
					     "--full): resume from last.ckpt", path);
		if (k != o->kind)
			return bio_error_set(err, BIO_EINVAL,
					     "%s: checkpoint optimizer is %s, the config asks for %s",
					     path, bio_optim_name(k), bio_optim_name(o->kind));
		if ((rc = meta_int(ov, "step", &o->step, path, err)) ||
		    (rc = meta_double(ov, "lr", &o->lr, path, err)))
			return rc;
	}
	if (s) {
		const struct bio_value *sv = bio_value_get(mv, "scheduler");
		char *kind = bio_value_strdup(bio_value_get(sv, "kind"));
		int bad = !kind || strcmp(kind, bio_sched_name(s->kind)) != 0;
		free(kind);
		if (bad)
			return bio_error_set(err, BIO_EINVAL,
					     "%s: checkpoint scheduler state missing or not '%s'",
					     path, bio_sched_name(s->kind));
		if ((rc = meta_double(sv, "lr", &s->lr, path, err)) ||
		    (rc = meta_int(sv, "epoch", &s->epoch, path, err)) ||
		    (rc = meta_int(sv, "t_max", &s->t_max, path, err)) ||
		    (rc = meta_double(sv, "best", &s->best, path, err)) ||
		    (rc = meta_int(sv, "num_bad", &v, path, err)))
			return rc;
		s->num_bad = v;
	}
	return 0;
}

/* Verifies record rec's crc32c against its tensor (name borrowed); with checked == 0 (a
 * checkpoint without the marker) a record must carry none. */
static int check_record_crc(struct bio_stream_reader *r, const struct bio_value *rec,
			    const char *name, int checked, const char *path, struct bio_error *err)
{
	unsigned long long idx = (unsigned long long)bio_stream_reader_record_index(r);
	const struct bio_value *cv = bio_value_get(rec, "crc32c");
	if (!cv && !checked)
		return 0;
	if (!cv)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: tensor '%.80s' has no "
				     "checksum (crc32c): the file is corrupt", path, idx, name);
	if (!checked)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: a checksummed record in a "
				     "checkpoint whose meta has no 'checksum': the file is corrupt",
				     path, idx);
	struct bio_tensor tv;
	int64_t want;
	int rc = bio_record_get_tensor(&tv, r, rec, "tensor", -1, 0, err);
	if (rc < 0)
		return rc;
	if (bio_value_int(cv, &want) < 0 || want < 0 || want > UINT32_MAX)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: tensor '%.80s': crc32c is "
				     "not a 32-bit checksum", path, idx, name);
	uint32_t got = tensor_crc(name, &tv);
	if (got != (uint32_t)want)
		return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: tensor '%.80s': checksum "
				     "mismatch (CRC-32C %08" PRIx32 ", stored %08" PRIx32 "): the "
				     "file is corrupt", path, idx, name, got, (uint32_t)want);
	return 0;
}

int bio_checkpoint_load(struct bio_model **model_out, struct bio_optim *o, struct bio_sched *s,
			struct bio_ckpt_meta *meta, const char *path, int max_batch,
			struct bio_error *err)
{
	struct bio_ckpt_meta local = {0};
	struct bio_model *m = NULL;
	unsigned char *seen = NULL;
	const char *paths[1] = {path};
	const struct bio_value *mv, *rec;
	int rc;
	*model_out = NULL;
	struct bio_stream_reader *r = bio_stream_reader_open(paths, 1, NULL, err);
	if (!r)
		return err ? err->code : BIO_EIO;
	if ((rc = bio_stream_read_header(r, "checkpoint", &mv, err)))
		goto out;
	/* checksums: "checksum": "crc32c" in the meta, a crc32c per record, meta_crc32c in the
	 * trailer; a checkpoint without the marker (written before them) loads unchecked */
	int checked = 0;
	uint32_t want_meta_crc = 0;
	const struct bio_value *ck = bio_value_get(mv, "checksum");
	if (ck) {
		if (!bio_value_str_eq(ck, "crc32c")) {
			rc = bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta 'checksum': not "
					   "crc32c (corrupt, or written by a newer version)", path);
			goto out;
		}
		checked = 1;
		if ((rc = meta_crc(&want_meta_crc, NULL, NULL, NULL, NULL, mv)) < 0) {
			rc = bio_error_set(err, rc, "%s: out of memory", path);
			goto out;
		}
	}
	struct bio_model_spec spec;
	if ((rc = read_spec(&spec, bio_value_get(mv, "model"), path, err)))
		goto out;
	if (spec.n_classes < 2) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: checkpoint model has %d classes", path,
				   spec.n_classes);
		goto out;
	}
	if (!(m = bio_model_new(&spec, max_batch, err))) {
		rc = err ? err->code : BIO_ENOMEM;
		goto out;
	}
	if (o)
		bio_optim_bind(o, m);
	if ((rc = read_meta(&local, o, s, mv, path, err)))
		goto out;
	if (local.n_labels != (size_t)spec.n_classes) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: %zu label names for %d classes", path,
				   local.n_labels, spec.n_classes);
		goto out;
	}
	/* seen[i]: model tensor i (i < n_tensors), then optimizer records 2 per param tensor */
	size_t n_slots = m->n_tensors * 3;
	seen = calloc(n_slots, 1);
	if (!seen) {
		rc = bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while ((rc = bio_stream_read_record(r, &rec, err)) == 1) {
		uint64_t idx = bio_stream_reader_record_index(r);
		char *name = bio_value_strdup(bio_value_get(rec, "name"));
		if (!name) {
			rc = bio_error_set(err, BIO_EFORMAT, "%s: record %llu: no name", path,
					   (unsigned long long)idx);
			goto out;
		}
		if ((rc = check_record_crc(r, rec, name, checked, path, err)) < 0) {
			free(name);
			goto out;
		}
		const struct bio_model_tensor *t = NULL;
		float *dst = NULL;
		size_t slot = 0;
		int is_opt = 0;
		if (strncmp(name, "optimizer.", 10) == 0) {
			char *suffix = strrchr(name, '.');
			if (suffix) {
				*suffix = 0;
				t = bio_model_find(m, name + 10);
				*suffix = '.';
			}
			is_opt = 1;
			if (t && t->role == BIO_ROLE_PARAM && o) {
				size_t ti = (size_t)(t - m->tensors);
				if (o->kind == BIO_OPTIM_SGD && strcmp(suffix, ".momentum_buffer") == 0) {
					dst = o->m + t->offset;
					slot = m->n_tensors + ti;
				} else if (o->kind != BIO_OPTIM_SGD && strcmp(suffix, ".exp_avg") == 0) {
					dst = o->m + t->offset;
					slot = m->n_tensors + ti;
				} else if (o->kind != BIO_OPTIM_SGD &&
					   strcmp(suffix, ".exp_avg_sq") == 0) {
					dst = o->v + t->offset;
					slot = 2 * m->n_tensors + ti;
				} else {
					t = NULL;
				}
			} else if (!o) {
				free(name);
				continue; /* optimizer state not wanted */
			} else {
				t = NULL;
			}
		} else {
			t = bio_model_find(m, name);
			if (t) {
				dst = t->data;
				slot = (size_t)(t - m->tensors);
			}
		}
		if (!t) {
			rc = bio_error_set(err, BIO_EFORMAT,
					   "%s: record %llu: tensor '%.80s' does not belong to the model",
					   path, (unsigned long long)idx, name);
			free(name);
			goto out;
		}
		free(name);
		if (seen[slot]) {
			rc = bio_error_set(err, BIO_EFORMAT, "%s: record %llu: tensor '%s' repeated",
					   path, (unsigned long long)idx, t->name);
			goto out;
		}
		seen[slot] = 1;
		struct bio_tensor tv;
		if ((rc = bio_record_get_tensor(&tv, r, rec, "tensor", -1, 0, err)))
			goto out;
		int want_dims = t->role == BIO_ROLE_COUNT ? 0 : t->n_dims;
		int shape_ok = tv.n_dims == want_dims;
		for (int i = 0; shape_ok && i < want_dims; i++)
			shape_ok = tv.shape[i] == t->shape[i];
		if (!shape_ok) {
			rc = bio_error_set(err, BIO_EFORMAT,
					   "%s: record %llu: tensor '%s' has the wrong shape for the model",
					   path, (unsigned long long)idx, t->name);
			goto out;
		}
		const unsigned char *src = tv.data;
		if (t->role == BIO_ROLE_COUNT && !is_opt) {
			if (tv.dtype != BIO_DTYPE_I64) {
				rc = bio_error_set(err, BIO_EFORMAT, "%s: tensor '%s' is not i64", path,
						   t->name);
				goto out;
			}
			memcpy(t->count, src, 8);
		} else if (tv.dtype == BIO_DTYPE_F32) {
			memcpy(dst, src, t->numel * sizeof(float));
		} else if (tv.dtype == BIO_DTYPE_F16 && !is_opt) {
			for (size_t i = 0; i < t->numel; i++) {
				uint16_t h;
				memcpy(&h, src + 2 * i, 2);
				dst[i] = bio_f16_to_f32(h);
			}
		} else {
			rc = bio_error_set(err, BIO_EFORMAT, "%s: tensor '%s' has dtype %s", path,
					   t->name, bio_dtype_name(tv.dtype));
			goto out;
		}
		if (t->role != BIO_ROLE_COUNT || is_opt) {
			for (size_t i = 0; i < t->numel; i++)
				if (!isfinite(dst[i])) {
					rc = bio_error_set(err, BIO_ENAN,
							   "%s: tensor '%s' holds a non-finite value",
							   path, t->name);
					goto out;
				}
		}
	}
	if (rc < 0)
		goto out;
	rc = 0;
	if (checked &&
	    bio_stream_reader_trailer_sum(r, "meta_crc32c") != (int64_t)want_meta_crc) {
		rc = bio_error_set(err, BIO_EFORMAT, "%s: checkpoint meta checksum mismatch (CRC-32C "
				   "%08" PRIx32 ", the trailer says %08" PRIx64 "): the file is corrupt",
				   path, want_meta_crc,
				   (uint64_t)bio_stream_reader_trailer_sum(r, "meta_crc32c"));
		goto out;
	}
	local.checksummed = checked;
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct bio_model_tensor *t = &m->tensors[i];
		int need_opt = o && t->role == BIO_ROLE_PARAM;
		const char *missing = !seen[i] ? "" : NULL;
		if (!missing && need_opt && !seen[m->n_tensors + i])
			missing = o->kind == BIO_OPTIM_SGD ? "optimizer.*.momentum_buffer of "
							   : "optimizer.*.exp_avg of ";
		if (!missing && need_opt && o->kind != BIO_OPTIM_SGD && !seen[2 * m->n_tensors + i])
			missing = "optimizer.*.exp_avg_sq of ";
		if (missing) {
			rc = bio_error_set(err, BIO_EFORMAT, "%s: tensor %s'%s' missing", path, missing,
					   t->name);
			goto out;
		}
	}
out:
	bio_stream_reader_free(r);
	free(seen);
	if (rc) {
		bio_model_free(m);
		bio_ckpt_meta_destroy(&local);
		return rc;
	}
	*model_out = m;
	if (meta)
		*meta = local;
	else
		bio_ckpt_meta_destroy(&local);
	return 0;
}
