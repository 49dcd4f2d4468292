/* Batching a samples stream (see batch_run.h): pass 1 indexes the selected records (offsets in
 * files, copies from pipes), pass 2 writes each epoch's batches in its order. */
#include "bio/batch_run.h"

#include <stdlib.h>
#include <string.h>

#include "bio/augment.h"
#include "bio/batch.h"

/* One selected sample (16 bytes): where it lies in a file, or, when it came from a pipe
 * (part == ENTRY_BUFFERED), the index of its copy in the buffered samples. */
struct entry {
	uint64_t offset;
	uint32_t part;
};
#define ENTRY_BUFFERED UINT32_MAX

/* A sample read from a pipe, kept in memory. */
struct buffered {
	int64_t label;
	char *id;    /* NUL-terminated copy */
	float *data; /* n_mod * pixels floats */
};

struct bio_batch_run {
	struct bio_stream_reader *r;
	const struct bio_header *h; /* modalities, labels, per-sample shape [1,H,W] */
	struct bio_batch_opts o;
	struct bio_augment aug[BIO_HEADER_MAX_MODS];
	int n_aug;                  /* modalities augmented */
	struct entry *entries;
	size_t n_entries, cap;
	struct buffered *bufs;
	size_t n_bufs, bufs_cap;
	size_t sample_bytes;        /* n_mod * pixels floats */
	uint64_t per_epoch;         /* batches */
};

int bio_batch_opts_from_config(struct bio_batch_opts *o, const struct bio_config *cfg,
			       struct bio_error *err)
{
	memset(o, 0, sizeof *o);
	o->shuffle = 1;
	int64_t seed;
	int rc;
	if ((rc = bio_config_get_str(cfg, "batch.split", &o->split, err)) < 0 ||
	    (rc = bio_config_get_bool(cfg, "batch.drop_last", &o->drop_last, err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "batch.max_buffer_bytes", 0, INT64_MAX,
					   &o->max_buffer, err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "batch.batch_size", 1, 1 << 24, &o->batch_size,
					   err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "batch.epochs", 0, 1000000000, &o->epochs,
					   err)) < 0 ||
	    (rc = bio_config_get_int_range(cfg, "batch.seed", 0, INT64_MAX, &seed, err)) < 0)
		return rc;
	o->seed = (uint64_t)seed;
	return 0;
}

/* Checks rec's modality tensors against the header (shape, finite values); fills views[m]. */
static int get_tensors(const struct bio_batch_run *b, const struct bio_value *rec,
		       struct bio_tensor *views, struct bio_error *err)
{
	for (int m = 0; m < b->h->n_mod; m++) {
		int rc = bio_record_get_sample(&views[m], b->h, b->r, rec, b->h->modalities[m], 0,
					       err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int fail_at(const struct bio_batch_run *b, struct bio_error *err, const char *what)
{
	return bio_error_set(err, BIO_EIO, "%s: record %llu: %s", bio_stream_reader_source(b->r),
			     (unsigned long long)bio_stream_reader_record_index(b->r), what);
}

/* A pipe's selected sample: kept itself, within the configured budget. */
static int buffer_sample(struct bio_batch_run *b, struct entry *e, int64_t label, const char *id,
			 size_t id_len, const struct bio_tensor *views, uint64_t *buffered_bytes,
			 struct bio_error *err)
{
	*buffered_bytes += b->sample_bytes + id_len + 1 + sizeof(*e) + sizeof(*b->bufs);
	if (*buffered_bytes > (uint64_t)b->o.max_buffer)
		return bio_error_set(err, BIO_ELIMIT, "%s: record %llu: the selected samples exceed "
				     "batch.max_buffer_bytes (%lld) held in memory when reading a "
				     "pipe; give a file instead, or raise the limit",
				     bio_stream_reader_source(b->r),
				     (unsigned long long)bio_stream_reader_record_index(b->r),
				     (long long)b->o.max_buffer);
	if (b->n_bufs == b->bufs_cap) {
		size_t cap = b->bufs_cap ? b->bufs_cap * 2 : 1024;
		struct buffered *p = realloc(b->bufs, cap * sizeof(*p));
		if (!p)
			return bio_error_set(err, BIO_ENOMEM, "out of memory buffering %zu samples",
					     b->n_bufs);
		b->bufs = p;
		b->bufs_cap = cap;
	}
	struct buffered *bf = &b->bufs[b->n_bufs];
	e->part = ENTRY_BUFFERED;
	e->offset = b->n_bufs++;
	bf->label = label;
	bf->id = malloc(id_len + 1);
	bf->data = malloc(b->sample_bytes);
	if (!bf->id || !bf->data)
		return bio_error_set(err, BIO_ENOMEM, "out of memory buffering %zu samples",
				     b->n_bufs);
	memcpy(bf->id, id, id_len);
	bf->id[id_len] = '\0';
	for (int m = 0; m < b->h->n_mod; m++)
		memcpy(bf->data + (size_t)m * b->h->pixels, views[m].data, views[m].data_bytes);
	return 0;
}

/* Pass 1: index the selected records (offsets in files; copies from pipes). */
static int index_records(struct bio_batch_run *b, struct bio_error *err)
{
	uint64_t buffered_bytes = 0;
	struct bio_tensor views[BIO_HEADER_MAX_MODS];
	for (;;) {
		const struct bio_value *rec;
		int rc = bio_stream_read_record(b->r, &rec, err);
		if (rc <= 0)
			return rc;
		const char *s, *id;
		size_t len, id_len;
		int64_t label;
		if ((rc = bio_record_get_str(&s, &len, b->r, rec, "split", err)) < 0 ||
		    (rc = bio_record_get_str(&id, &id_len, b->r, rec, "id", err)) < 0 ||
		    (rc = bio_record_get_label(&label, b->h, b->r, rec, "label", 0, err)) < 0)
			return rc;
		if (len != strlen(b->o.split) || memcmp(s, b->o.split, len) != 0)
			continue;
		if ((rc = get_tensors(b, rec, views, err)) < 0)
			return rc;
		if (b->n_entries == UINT32_MAX)
			return bio_error_set(err, BIO_ELIMIT, "%s: more than %u selected samples",
					     bio_stream_reader_source(b->r), UINT32_MAX);
		if (b->n_entries == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 1024;
			struct entry *p = realloc(b->entries, cap * sizeof(*p));
			if (!p)
				return bio_error_set(err, BIO_ENOMEM, "out of memory indexing %zu "
						     "samples", b->n_entries);
			b->entries = p;
			b->cap = cap;
		}
		struct entry *e = &b->entries[b->n_entries++];
		memset(e, 0, sizeof(*e));
		size_t part;
		rc = bio_stream_reader_tell(b->r, &part, &e->offset);
		if (rc == 0 && part < ENTRY_BUFFERED) {
			e->part = (uint32_t)part;
			continue;
		}
		if (rc != BIO_EUNSUPPORTED)
			return fail_at(b, err, "cannot tell its position");
		if ((rc = buffer_sample(b, e, label, id, id_len, views, &buffered_bytes, err)) < 0)
			return rc;
	}
}

struct bio_batch_run *bio_batch_run_new(struct bio_stream_reader *r, const struct bio_header *h,
					const struct bio_batch_opts *o,
					const struct bio_config *cfg, struct bio_error *err)
{
	struct bio_batch_run *b = calloc(1, sizeof *b);
	if (!b) {
		bio_error_set(err, BIO_ENOMEM, "out of memory");
		return NULL;
	}
	b->r = r;
	b->h = h;
	b->o = *o;
	b->sample_bytes = (size_t)h->n_mod * h->pixels * sizeof(float);
	for (int m = 0; m < h->n_mod; m++) {
		if (bio_augment_from_config(&b->aug[m], cfg, h->modalities[m], err) < 0)
			goto fail;
		b->n_aug += bio_augment_active(&b->aug[m]);
	}
	if (index_records(b, err) < 0)
		goto fail;
	b->per_epoch = bio_batch_count(b->n_entries, (uint64_t)o->batch_size, o->drop_last);
	return b;
fail:
	bio_batch_run_free(b);
	return NULL;
}

void bio_batch_run_free(struct bio_batch_run *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_bufs; i++) {
		free(b->bufs[i].id);
		free(b->bufs[i].data);
	}
	free(b->bufs);
	free(b->entries);
	free(b);
}

void bio_batch_run_counts(const struct bio_batch_run *b, size_t *n_samples, size_t *n_held,
			  uint64_t *batches_per_epoch)
{
	*n_samples = b->n_entries;
	*n_held = b->n_bufs;
	*batches_per_epoch = b->per_epoch;
}

static const char *const own_meta[] = {"program",  "version", "batch_size",  "seed",
				       "epochs",   "start_epoch", "batches_per_epoch",
				       "split",    "shape",   "n_samples",   "drop_last",
				       "shuffle",  "augment"};

void bio_batch_run_write_header(struct bio_batch_run *b, struct bio_stream_writer *w)
{
	const struct bio_batch_opts *o = &b->o;
	const size_t n_own = sizeof(own_meta) / sizeof(own_meta[0]);
	bio_stream_begin_header_carry(w, "batches", b->h->meta, own_meta, n_own,
				      n_own - (b->n_aug == 0));
	bio_pack_kv_str(w, "program", "bio-batch");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_kv_int(w, "batch_size", o->batch_size);
	bio_pack_kv_int(w, "seed", (int64_t)o->seed);
	bio_pack_kv_int(w, "epochs", o->epochs);
	bio_pack_kv_int(w, "start_epoch", o->start_epoch);
	bio_pack_kv_int(w, "batches_per_epoch", (int64_t)b->per_epoch);
	bio_pack_kv_str(w, "split", o->split);
	bio_pack_str(w, "shape");
	bio_pack_array(w, 3);
	for (int d = 0; d < 3; d++)
		bio_pack_int(w, b->h->shape[d]);
	bio_pack_kv_int(w, "n_samples", (int64_t)b->n_entries);
	bio_pack_str(w, "drop_last");
	bio_pack_bool(w, o->drop_last);
	bio_pack_str(w, "shuffle");
	bio_pack_bool(w, o->shuffle);
	if (!b->n_aug) /* only when augmenting: without, the stream is what it was before */
		return;
	static const char *const names[6] = {"rotate",   "translate",  "scale",
					     "contrast", "brightness", "shift"};
	bio_pack_str(w, "augment");
	bio_pack_map(w, (size_t)b->n_aug);
	for (int m = 0; m < b->h->n_mod; m++) {
		const struct bio_augment *a = &b->aug[m];
		if (!bio_augment_active(a))
			continue;
		const double r[6] = {a->rotate,   a->translate,  a->scale,
				     a->contrast, a->brightness, a->shift};
		bio_pack_str(w, b->h->modalities[m]);
		bio_pack_map(w, 6);
		for (int i = 0; i < 6; i++)
			bio_pack_kv_double(w, names[i], r[i]);
	}
}

/* One batch being gathered. */
struct batch {
	size_t bs;
	int64_t *labels;     /* [bs] */
	float *data;         /* [n_mod][bs][pixels] */
	size_t *id_off;      /* [bs] into ids */
	char *ids;           /* NUL-terminated ids */
	size_t ids_cap, ids_used;
	double *aug_rows;    /* [n_mod][bs][BIO_AUGMENT_N_PARAMS] */
	float *aug_src;      /* [pixels] */
};

/* Sample k of the batch: entry e (index i of the epoch's order) read, augmented, its id kept. */
static int gather(struct bio_batch_run *b, struct batch *bt, size_t k, const struct entry *e,
		  uint32_t i, long long epoch, struct bio_error *err)
{
	const size_t pixels = b->h->pixels, bs = bt->bs;
	const int n_mod = b->h->n_mod;
	const char *id;
	size_t id_len;
	if (e->part == ENTRY_BUFFERED) {
		const struct buffered *bf = &b->bufs[e->offset];
		id = bf->id;
		id_len = strlen(id);
		bt->labels[k] = bf->label;
		for (int m = 0; m < n_mod; m++)
			memcpy(bt->data + ((size_t)m * bs + k) * pixels, bf->data + (size_t)m * pixels,
			       pixels * sizeof(float));
	} else {
		const struct bio_value *rec;
		struct bio_tensor views[BIO_HEADER_MAX_MODS];
		int rc;
		if ((rc = bio_stream_read_record_at(b->r, e->part, e->offset, &rec, err)) < 0 ||
		    (rc = bio_record_get_str(&id, &id_len, b->r, rec, "id", err)) < 0 ||
		    (rc = bio_record_get_label(&bt->labels[k], b->h, b->r, rec, "label", 0, err)) <
			    0 ||
		    (rc = get_tensors(b, rec, views, err)) < 0)
			return rc;
		for (int m = 0; m < n_mod; m++)
			memcpy(bt->data + ((size_t)m * bs + k) * pixels, views[m].data,
			       pixels * sizeof(float));
	}
	if (bt->ids_used + id_len + 1 > bt->ids_cap) {
		size_t cap = bt->ids_cap;
		while (bt->ids_used + id_len + 1 > cap)
			cap *= 2;
		char *p = realloc(bt->ids, cap);
		if (!p)
			return bio_error_set(err, BIO_ENOMEM, "out of memory for batch ids");
		bt->ids = p;
		bt->ids_cap = cap;
	}
	const int img_h = (int)b->h->shape[1], img_w = (int)b->h->shape[2];
	for (int m = 0; m < n_mod; m++) {
		if (!bio_augment_active(&b->aug[m]))
			continue;
		struct bio_augment_params ap;
		float *img = bt->data + ((size_t)m * bs + k) * pixels;
		bio_augment_draw(&ap, &b->aug[m], img_h, img_w, b->o.seed, (uint64_t)epoch, i,
				 (uint64_t)m);
		memcpy(bt->aug_src, img, pixels * sizeof(float));
		bio_augment_apply(img, bt->aug_src, img_h, img_w, &ap);
		bio_augment_params_pack(bt->aug_rows + ((size_t)m * bs + k) * BIO_AUGMENT_N_PARAMS,
					&ap);
	}
	memcpy(bt->ids + bt->ids_used, id, id_len);
	bt->ids[bt->ids_used + id_len] = '\0';
	bt->id_off[k] = bt->ids_used;
	bt->ids_used += id_len + 1;
	return 0;
}

/* Writes the n samples gathered in bt as batch bi of epoch; the last pack's status. */
static int pack_batch(const struct bio_batch_run *b, struct bio_stream_writer *w,
		      const struct batch *bt, size_t n, long long epoch, uint64_t bi)
{
	const int n_mod = b->h->n_mod;
	const size_t bs = bt->bs;
	int wrc;
	bio_stream_begin_record(w);
	bio_pack_map(w, 4 + (size_t)n_mod + (size_t)b->n_aug);
	bio_pack_kv_int(w, "epoch", epoch);
	bio_pack_kv_int(w, "index", (int64_t)bi);
	bio_pack_str(w, "ids");
	bio_pack_array(w, n);
	for (size_t k = 0; k < n; k++)
		bio_pack_str(w, bt->ids + bt->id_off[k]);
	struct bio_tensor tl;
	int64_t lshape[1] = {(int64_t)n};
	bio_tensor_view(&tl, BIO_DTYPE_I64, 1, lshape, bt->labels);
	bio_pack_str(w, "label");
	wrc = bio_pack_tensor(w, &tl);
	for (int m = 0; m < n_mod; m++) {
		struct bio_tensor tm;
		int64_t shape[4] = {(int64_t)n, b->h->shape[0], b->h->shape[1], b->h->shape[2]};
		bio_tensor_view(&tm, BIO_DTYPE_F32, 4, shape, bt->data + (size_t)m * bs * b->h->pixels);
		bio_pack_str(w, b->h->modalities[m]);
		wrc = bio_pack_tensor(w, &tm);
	}
	for (int m = 0; m < n_mod; m++) {
		if (!bio_augment_active(&b->aug[m]))
			continue;
		char key[64];
		struct bio_tensor ta;
		int64_t ashape[2] = {(int64_t)n, BIO_AUGMENT_N_PARAMS};
		bio_tensor_view(&ta, BIO_DTYPE_F64, 2, ashape,
				bt->aug_rows + (size_t)m * bs * BIO_AUGMENT_N_PARAMS);
		snprintf(key, sizeof key, "aug_%.40s", b->h->modalities[m]);
		bio_pack_str(w, key);
		wrc = bio_pack_tensor(w, &ta);
	}
	return wrc;
}

int bio_batch_run_write(struct bio_batch_run *b, struct bio_stream_writer *w,
			struct bio_error *err)
{
	const struct bio_batch_opts *o = &b->o;
	const size_t n_entries = b->n_entries;
	struct batch bt = {.bs = (size_t)o->batch_size, .ids_cap = 4096};
	size_t bs = bt.bs;
	uint32_t *perm = malloc((n_entries ? n_entries : 1) * sizeof(*perm));
	bt.labels = malloc(bs * sizeof(*bt.labels));
	bt.data = malloc(bs * b->sample_bytes);
	bt.id_off = malloc(bs * sizeof(*bt.id_off));
	bt.ids = malloc(bt.ids_cap);
	bt.aug_rows = malloc(bs * (size_t)b->h->n_mod * BIO_AUGMENT_N_PARAMS * sizeof(double));
	bt.aug_src = malloc(b->h->pixels * sizeof(float));
	int rc = 0, wrc = 0;
	if (!perm || !bt.labels || !bt.data || !bt.id_off || !bt.ids || !bt.aug_rows ||
	    !bt.aug_src) {
		rc = bio_error_set(err, BIO_ENOMEM, "out of memory for a batch of %zu samples of %zu "
				   "bytes", bs, b->sample_bytes);
		goto out;
	}
	/* per epoch, an order; per batch, gather its samples and write them */
	for (long long epoch = o->start_epoch; epoch < o->epochs && wrc == 0; epoch++) {
		if (o->shuffle) {
			bio_batch_epoch_order(perm, (uint32_t)n_entries, o->seed, (uint64_t)epoch);
		} else {
			for (size_t i = 0; i < n_entries; i++)
				perm[i] = (uint32_t)i;
		}
		for (uint64_t bi = 0; bi < b->per_epoch && wrc == 0; bi++) {
			size_t first = (size_t)bi * bs;
			size_t n = n_entries - first < bs ? n_entries - first : bs;
			bt.ids_used = 0;
			for (size_t k = 0; k < n; k++)
				if ((rc = gather(b, &bt, k, &b->entries[perm[first + k]], perm[first + k],
						 epoch, err)) < 0)
					goto out;
			wrc = pack_batch(b, w, &bt, n, epoch, bi);
		}
	}
out:
	free(perm);
	free(bt.labels);
	free(bt.data);
	free(bt.id_off);
	free(bt.ids);
	free(bt.aug_rows);
	free(bt.aug_src);
	return rc;
}
