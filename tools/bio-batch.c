/* bio-batch: turns samples streams into a batches stream for training. It selects one split,
 * shuffles it with an order that depends only on (seed, epoch), cuts it into batches and repeats
 * for the requested epochs; --start-epoch k gives exactly the tail of an uninterrupted run. From
 * regular files it indexes where each selected record starts in one pass and re-reads records in
 * shuffled order, so memory holds one batch, not the data set; from a pipe it buffers the
 * selected samples in memory, up to batch.max_buffer_bytes. With augment.enabled, each sample of
 * each epoch is written transformed (bio/augment.h: rotation, translation, scale, contrast,
 * brightness, circular shift per modality), drawn from the stream of (seed, epoch, sample,
 * modality), and the record carries the drawn parameters (aug_<modality>). */
#include <stdlib.h>
#include <string.h>

#include "bio/augment.h"
#include "bio/batch.h"
#include "bio/header.h"
#include "bio/stream.h"
#include "tool.h"

#define BATCH_MAX_MODALITIES BIO_HEADER_MAX_MODS

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

struct batcher {
	struct bio_tool *t;
	struct bio_stream_reader *r;
	struct bio_header h; /* modalities, labels, per-sample shape [1,H,W] */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-batch [OPTIONS] [SAMPLES...]\n"
		"Select a split of samples streams (standard input when no file or '-' is given),\n"
		"shuffle it per epoch, and write batches for the requested epochs.\n"
		"\n"
		"  -s, --split NAME       split to use: train, val or test (default batch.split)\n"
		"  -b, --batch-size N     samples per batch (default batch.batch_size)\n"
		"  -E, --epochs N         epochs in all (default batch.epochs)\n"
		"      --start-epoch K    begin at epoch K (0-based), as the tail of a full run\n"
		"      --seed N           shuffle seed (default batch.seed)\n"
		"      --drop-last        leave out each epoch's last, incomplete batch\n"
		"      --no-shuffle       keep the input order in every epoch\n"
		BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: batch.split, batch.batch_size, batch.epochs, batch.drop_last,\n"
		"batch.seed, batch.max_buffer_bytes (samples held in memory when reading a pipe),\n"
		"augment.enabled, augment.<modality>.{rotate,translate,scale,contrast,brightness,\n"
		"shift} (training-time augmentation, drawn per seed, epoch and sample).\n"
		"See bio-batch(1).\n");
}

/* Checks rec's modality tensors against the header (shape, finite values); fills views[m]. */
static int get_tensors(struct batcher *b, const struct bio_value *rec, struct bio_tensor *views,
		       struct bio_error *err)
{
	for (int m = 0; m < b->h.n_mod; m++) {
		int rc = bio_record_get_sample(&views[m], &b->h, b->r, rec, b->h.modalities[m], 0,
					       err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static const char *const own_meta[] = {"program",  "version", "batch_size",  "seed",
				       "epochs",   "start_epoch", "batches_per_epoch",
				       "split",    "shape",   "n_samples",   "drop_last",
				       "shuffle",  "augment"};

int main(int argc, char **argv)
{
	enum { OPT_START = 0x2000, OPT_SEED, OPT_DROP, OPT_NOSHUF };
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"split", required_argument, 0, 's'},
		{"batch-size", required_argument, 0, 'b'},
		{"epochs", required_argument, 0, 'E'},
		{"start-epoch", required_argument, 0, OPT_START},
		{"seed", required_argument, 0, OPT_SEED},
		{"drop-last", no_argument, 0, OPT_DROP},
		{"no-shuffle", no_argument, 0, OPT_NOSHUF},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	const char *split_opt = NULL;
	long long batch_size = -1, epochs = -1, start_epoch = 0, seed_opt = -1;
	int drop_opt = 0, shuffle = 1, opt;

	bio_tool_init(&t, "bio-batch", argc, argv);
	while ((opt = getopt_long(argc, argv, BIO_TOOL_SHORT_OPTS "s:b:E:", long_opts, NULL)) !=
	       -1) {
		if (bio_tool_common_opt(&t, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			usage(stdout);
			return BIO_EXIT_OK;
		case 's':
			split_opt = optarg;
			bio_tool_option_key(&t, "--split", "batch.split", optarg);
			break;
		case 'b':
			batch_size = bio_tool_parse_count(&t, "--batch-size", optarg, 1, 1 << 24);
			bio_tool_option_key(&t, "--batch-size", "batch.batch_size", optarg);
			break;
		case 'E':
			epochs = bio_tool_parse_count(&t, "--epochs", optarg, 0, 1000000000);
			bio_tool_option_key(&t, "--epochs", "batch.epochs", optarg);
			break;
		case OPT_START:
			start_epoch = bio_tool_parse_count(&t, "--start-epoch", optarg, 0, 1000000000);
			break;
		case OPT_SEED:
			seed_opt = bio_tool_parse_count(&t, "--seed", optarg, 0, INT64_MAX);
			bio_tool_option_key(&t, "--seed", "batch.seed", optarg);
			break;
		case OPT_DROP:
			drop_opt = 1;
			bio_tool_option_key(&t, "--drop-last", "batch.drop_last", "true");
			break;
		case OPT_NOSHUF:
			shuffle = 0;
			break;
		default:
			bio_tool_bad_option(&t, argv, BIO_TOOL_SHORT_OPTS "s:b:E:", long_opts);
		}
	}
	bio_tool_load_config(&t);

	const char *split;
	int64_t v, max_buffer;
	int drop_last;
	if (bio_config_get_str(t.cfg, "batch.split", &split, &err) < 0 ||
	    bio_config_get_bool(t.cfg, "batch.drop_last", &drop_last, &err) < 0 ||
	    bio_config_get_int_range(t.cfg, "batch.max_buffer_bytes", 0,
				     INT64_MAX, &max_buffer, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (split_opt)
		split = split_opt;
	if (drop_opt)
		drop_last = 1;
	if (batch_size < 0) {
		if (bio_config_get_int_range(t.cfg, "batch.batch_size", 1, 1 << 24, &v, &err) < 0)
			bio_tool_die_err(&t, &err);
		batch_size = v;
	}
	if (epochs < 0) {
		if (bio_config_get_int_range(t.cfg, "batch.epochs", 0, 1000000000, &v, &err) < 0)
			bio_tool_die_err(&t, &err);
		epochs = v;
	}
	if (seed_opt < 0) {
		if (bio_config_get_int_range(t.cfg, "batch.seed", 0, INT64_MAX, &v, &err) < 0)
			bio_tool_die_err(&t, &err);
		seed_opt = v;
	}
	if (start_epoch > epochs)
		bio_tool_usage_error(&t, "--start-epoch %lld is past --epochs %lld", start_epoch,
				     epochs);
	uint64_t seed = (uint64_t)seed_opt;

	/* Inputs: files, or standard input. */
	struct batcher b = {.t = &t};
	b.r = bio_tool_open_inputs(&t, argc, argv, optind);
	if (bio_header_read(&b.h, b.r, "samples",
			    BIO_HEADER_MODALITIES | BIO_HEADER_LABELS | BIO_HEADER_SHAPE, &err) < 0)
		bio_tool_die_err(&t, &err);
	const struct bio_value *meta = b.h.meta;
	const size_t pixels = b.h.pixels;
	const int n_mod = b.h.n_mod;
	struct bio_augment aug[BATCH_MAX_MODALITIES];
	int n_aug = 0;
	for (int m = 0; m < n_mod; m++) {
		if (bio_augment_from_config(&aug[m], t.cfg, b.h.modalities[m], &err) < 0)
			bio_tool_die_err(&t, &err);
		n_aug += bio_augment_active(&aug[m]);
	}
	const int img_h = (int)b.h.shape[1], img_w = (int)b.h.shape[2];

	/* Pass 1: index the selected records (offsets in files; copies from pipes). */
	struct entry *entries = NULL;
	struct buffered *bufs = NULL;
	size_t n_entries = 0, cap = 0, n_bufs = 0, bufs_cap = 0;
	uint64_t buffered_bytes = 0;
	size_t sample_bytes = (size_t)n_mod * pixels * sizeof(float);
	struct bio_tensor views[BATCH_MAX_MODALITIES];
	for (;;) {
		const struct bio_value *rec;
		int rc = bio_stream_read_record(b.r, &rec, &err);
		if (rc < 0)
			bio_tool_die_err(&t, &err);
		if (rc == 0)
			break;
		const char *s, *id;
		size_t len, id_len;
		int64_t label;
		if (bio_record_get_str(&s, &len, b.r, rec, "split", &err) < 0 ||
		    bio_record_get_str(&id, &id_len, b.r, rec, "id", &err) < 0 ||
		    bio_record_get_label(&label, &b.h, b.r, rec, "label", 0, &err) < 0)
			bio_tool_die_err(&t, &err);
		if (len != strlen(split) || memcmp(s, split, len) != 0)
			continue;
		if (get_tensors(&b, rec, views, &err) < 0)
			bio_tool_die_err(&t, &err);
		if (n_entries == UINT32_MAX)
			bio_tool_die(&t, "%s: more than %u selected samples",
				     bio_stream_reader_source(b.r), UINT32_MAX);
		if (n_entries == cap) {
			cap = cap ? cap * 2 : 1024;
			struct entry *p = realloc(entries, cap * sizeof(*entries));
			if (!p)
				bio_tool_die(&t, "out of memory indexing %zu samples", n_entries);
			entries = p;
		}
		struct entry *e = &entries[n_entries++];
		memset(e, 0, sizeof(*e));
		size_t part;
		rc = bio_stream_reader_tell(b.r, &part, &e->offset);
		if (rc == 0 && part < ENTRY_BUFFERED) {
			e->part = (uint32_t)part;
			continue;
		}
		if (rc != BIO_EUNSUPPORTED)
			bio_tool_die(&t, "%s: record %llu: cannot tell its position",
				     bio_stream_reader_source(b.r),
				     (unsigned long long)bio_stream_reader_record_index(b.r));
		/* A pipe: keep the sample itself, within the configured budget. */
		buffered_bytes += sample_bytes + id_len + 1 + sizeof(*e) + sizeof(*bufs);
		if (buffered_bytes > (uint64_t)max_buffer)
			bio_tool_die(&t,
				     "%s: record %llu: the selected samples exceed "
				     "batch.max_buffer_bytes (%lld) held in memory when reading a "
				     "pipe; give a file instead, or raise the limit",
				     bio_stream_reader_source(b.r),
				     (unsigned long long)bio_stream_reader_record_index(b.r),
				     (long long)max_buffer);
		if (n_bufs == bufs_cap) {
			bufs_cap = bufs_cap ? bufs_cap * 2 : 1024;
			struct buffered *p = realloc(bufs, bufs_cap * sizeof(*bufs));
			if (!p)
				bio_tool_die(&t, "out of memory buffering %zu samples", n_bufs);
			bufs = p;
		}
		struct buffered *bf = &bufs[n_bufs];
		e->part = ENTRY_BUFFERED;
		e->offset = n_bufs++;
		bf->label = label;
		bf->id = malloc(id_len + 1);
		bf->data = malloc(sample_bytes);
		if (!bf->id || !bf->data)
			bio_tool_die(&t, "out of memory buffering %zu samples", n_bufs);
		memcpy(bf->id, id, id_len);
		bf->id[id_len] = '\0';
		for (int m = 0; m < n_mod; m++)
			memcpy(bf->data + (size_t)m * pixels, views[m].data, views[m].data_bytes);
	}
	if (n_entries == 0)
		bio_tool_warn(&t, "no samples of split '%s' in the input", split);
	uint64_t per_epoch = bio_batch_count(n_entries, (uint64_t)batch_size, drop_last);

	/* Header: the input meta carried forward, ours replaced. */
	FILE *out = bio_tool_output_open_stream(&t);
	struct bio_stream_writer *w = bio_stream_writer_new(out, &err);
	if (!w)
		bio_tool_die_err(&t, &err);
	bio_stream_writer_set_name(w, bio_tool_output_name(&t));
	const size_t n_own = sizeof(own_meta) / sizeof(own_meta[0]);
	bio_stream_begin_header_carry(w, "batches", meta, own_meta, n_own, n_own - (n_aug == 0));
	bio_pack_kv_str(w, "program", "bio-batch");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_kv_int(w, "batch_size", batch_size);
	bio_pack_kv_int(w, "seed", (int64_t)seed);
	bio_pack_kv_int(w, "epochs", epochs);
	bio_pack_kv_int(w, "start_epoch", start_epoch);
	bio_pack_kv_int(w, "batches_per_epoch", (int64_t)per_epoch);
	bio_pack_kv_str(w, "split", split);
	bio_pack_str(w, "shape");
	bio_pack_array(w, 3);
	for (int d = 0; d < 3; d++)
		bio_pack_int(w, b.h.shape[d]);
	bio_pack_kv_int(w, "n_samples", (int64_t)n_entries);
	bio_pack_str(w, "drop_last");
	bio_pack_bool(w, drop_last);
	bio_pack_str(w, "shuffle");
	bio_pack_bool(w, shuffle);
	if (n_aug) { /* only when augmenting: without, the stream is what it was before */
		static const char *const names[6] = {"rotate",   "translate",  "scale",
						     "contrast", "brightness", "shift"};
		bio_pack_str(w, "augment");
		bio_pack_map(w, (size_t)n_aug);
		for (int m = 0; m < n_mod; m++) {
			if (!bio_augment_active(&aug[m]))
				continue;
			const double r[6] = {aug[m].rotate,   aug[m].translate,  aug[m].scale,
					     aug[m].contrast, aug[m].brightness, aug[m].shift};
			bio_pack_str(w, b.h.modalities[m]);
			bio_pack_map(w, 6);
			for (int i = 0; i < 6; i++)
				bio_pack_kv_double(w, names[i], r[i]);
		}
	}

	/* Pass 2: per epoch, an order; per batch, gather its samples and write them. */
	size_t bs = (size_t)batch_size;
	uint32_t *perm = malloc((n_entries ? n_entries : 1) * sizeof(*perm));
	int64_t *labels = malloc(bs * sizeof(*labels));
	float *data = malloc(bs * sample_bytes);
	size_t *id_off = malloc(bs * sizeof(*id_off));
	size_t ids_cap = 4096, ids_used;
	char *ids = malloc(ids_cap);
	double *aug_rows = malloc(bs * (size_t)n_mod * BIO_AUGMENT_N_PARAMS * sizeof(double));
	float *aug_src = malloc(pixels * sizeof(float));
	if (!perm || !labels || !data || !id_off || !ids || !aug_rows || !aug_src)
		bio_tool_die(&t, "out of memory for a batch of %zu samples of %zu bytes", bs,
			     sample_bytes);
	int wrc = 0;
	for (long long epoch = start_epoch; epoch < epochs && wrc == 0; epoch++) {
		if (shuffle) {
			bio_batch_epoch_order(perm, (uint32_t)n_entries, seed, (uint64_t)epoch);
		} else {
			for (size_t i = 0; i < n_entries; i++)
				perm[i] = (uint32_t)i;
		}
		for (uint64_t bi = 0; bi < per_epoch && wrc == 0; bi++) {
			size_t first = (size_t)bi * bs;
			size_t n = n_entries - first < bs ? n_entries - first : bs;
			ids_used = 0;
			for (size_t k = 0; k < n; k++) {
				const struct entry *e = &entries[perm[first + k]];
				const char *id;
				size_t id_len;
				if (e->part == ENTRY_BUFFERED) {
					const struct buffered *bf = &bufs[e->offset];
					id = bf->id;
					id_len = strlen(id);
					labels[k] = bf->label;
					for (int m = 0; m < n_mod; m++)
						memcpy(data + ((size_t)m * bs + k) * pixels,
						       bf->data + (size_t)m * pixels,
						       pixels * sizeof(float));
				} else {
					const struct bio_value *rec;
					if (bio_stream_read_record_at(b.r, e->part, e->offset, &rec,
								      &err) < 0 ||
					    bio_record_get_str(&id, &id_len, b.r, rec, "id", &err) < 0 ||
					    bio_record_get_label(&labels[k], &b.h, b.r, rec, "label", 0,
								 &err) < 0 ||
					    get_tensors(&b, rec, views, &err) < 0)
						bio_tool_die_err(&t, &err);
					for (int m = 0; m < n_mod; m++)
						memcpy(data + ((size_t)m * bs + k) * pixels,
						       views[m].data, pixels * sizeof(float));
				}
				if (ids_used + id_len + 1 > ids_cap) {
					while (ids_used + id_len + 1 > ids_cap)
						ids_cap *= 2;
					char *p = realloc(ids, ids_cap);
					if (!p)
						bio_tool_die(&t, "out of memory for batch ids");
					ids = p;
				}
				for (int m = 0; m < n_mod; m++) {
					if (!bio_augment_active(&aug[m]))
						continue;
					struct bio_augment_params ap;
					float *img = data + ((size_t)m * bs + k) * pixels;
					bio_augment_draw(&ap, &aug[m], img_h, img_w, seed,
							 (uint64_t)epoch, perm[first + k], (uint64_t)m);
					memcpy(aug_src, img, pixels * sizeof(float));
					bio_augment_apply(img, aug_src, img_h, img_w, &ap);
					bio_augment_params_pack(aug_rows + ((size_t)m * bs + k) *
								BIO_AUGMENT_N_PARAMS, &ap);
				}
				memcpy(ids + ids_used, id, id_len);
				ids[ids_used + id_len] = '\0';
				id_off[k] = ids_used;
				ids_used += id_len + 1;
			}
			bio_stream_begin_record(w);
			bio_pack_map(w, 4 + (size_t)n_mod + (size_t)n_aug);
			bio_pack_kv_int(w, "epoch", epoch);
			bio_pack_kv_int(w, "index", (int64_t)bi);
			bio_pack_str(w, "ids");
			bio_pack_array(w, n);
			for (size_t k = 0; k < n; k++)
				bio_pack_str(w, ids + id_off[k]);
			struct bio_tensor tl;
			int64_t lshape[1] = {(int64_t)n};
			bio_tensor_view(&tl, BIO_DTYPE_I64, 1, lshape, labels);
			bio_pack_str(w, "label");
			wrc = bio_pack_tensor(w, &tl);
			for (int m = 0; m < n_mod; m++) {
				struct bio_tensor tm;
				int64_t shape[4] = {(int64_t)n, b.h.shape[0], b.h.shape[1], b.h.shape[2]};
				bio_tensor_view(&tm, BIO_DTYPE_F32, 4, shape,
						data + (size_t)m * bs * pixels);
				bio_pack_str(w, b.h.modalities[m]);
				wrc = bio_pack_tensor(w, &tm);
			}
			for (int m = 0; m < n_mod; m++) {
				if (!bio_augment_active(&aug[m]))
					continue;
				char key[64];
				struct bio_tensor ta;
				int64_t ashape[2] = {(int64_t)n, BIO_AUGMENT_N_PARAMS};
				bio_tensor_view(&ta, BIO_DTYPE_F64, 2, ashape,
						aug_rows + (size_t)m * bs * BIO_AUGMENT_N_PARAMS);
				snprintf(key, sizeof key, "aug_%.40s", b.h.modalities[m]);
				bio_pack_str(w, key);
				wrc = bio_pack_tensor(w, &ta);
			}
		}
	}
	/* A write error (or a reader that went away) is reported by finish / commit. */
	int rc = bio_stream_finish(w, 0, NULL, NULL, &err);
	if (rc < 0)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE (reader went away): exits 0 quietly */
	bio_stream_writer_free(w);
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr,
			"bio-batch: %zu samples of split '%s' (%zu held in memory from a pipe), "
			"%llu batches per epoch, epochs %lld to %lld\n",
			n_entries, split, n_bufs, (unsigned long long)per_epoch, start_epoch,
			epochs - 1);

	for (size_t i = 0; i < n_bufs; i++) {
		free(bufs[i].id);
		free(bufs[i].data);
	}
	free(bufs);
	free(entries);
	free(perm);
	free(labels);
	free(data);
	free(id_off);
	free(ids);
	free(aug_rows);
	free(aug_src);
	bio_header_destroy(&b.h);
	bio_stream_reader_free(b.r);
	bio_config_free(t.cfg);
	return BIO_EXIT_OK;
}
