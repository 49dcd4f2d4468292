/* bio-prep: turns a manifest stream (one record per sample, one image path per modality) into a
 * samples stream (one normalised f32 tensor [1,S,S] per modality). Images are decoded, converted
 * to gray, resized and normalised on -j threads through an ordered map, so the output is
 * byte-identical for every thread count and memory does not depend on the number of images.
 * --shard i/n keeps the records whose index modulo n is i: shards run apart (GNU parallel) and
 * joined with cat hold the same records as one run. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bio/header.h"
#include "bio/prep.h"
#include "bio/stream.h"
#include "bio/thread.h"
#include "tool.h"

#define PREP_MAX_MODALITIES BIO_HEADER_MAX_MODS

/* One sample in flight: the strings of its manifest record, its output tensors, its outcome. */
struct prep_job {
	uint64_t index; /* record index in the manifest */
	int64_t label;
	char *strs;     /* id, identity, split, then one path per modality, NUL-separated */
	size_t strs_cap;
	size_t off_id, off_identity, off_split, off_path[PREP_MAX_MODALITIES];
	float *out;     /* n_mod * S * S floats */
	struct bio_fp_segment_info fp[PREP_MAX_MODALITIES]; /* what segmentation found */
	int rc;
	struct bio_error err;
};

struct prep_ctx {
	const struct bio_prep_params *params; /* one per modality */
	int n_mod;
	size_t pixels; /* S * S */
	struct bio_prep_scratch **scratch; /* one per worker */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bio-prep [OPTIONS] [MANIFEST...]\n"
		"Decode, gray, resize and normalise the images of a manifest stream (standard input\n"
		"when no file or '-' is given) into a samples stream.\n"
		"\n"
		"  -k, --keep-going     skip a sample whose image fails, name it on stderr, count it\n"
		"                       in the trailer's \"failed\"; exit 1 at the end if more than\n"
		"                       --max-failures samples failed\n"
		"      --max-failures N failures allowed with --keep-going (default prep.max_failures)\n"
		"      --shard I/N      process only records whose index modulo N is I (0 <= I < N)\n"
		"      --root DIR       resolve relative image paths against DIR (default: as written,\n"
		"                       relative to the current directory)\n"
		BIO_TOOL_COMMON_HELP
		"\n"
		"Config keys: prep.size, prep.resize (bilinear|area), prep.mean, prep.std,\n"
		"prep.quantize, prep.max_width, prep.max_height, prep.max_failures, prep.fingerprint.*\n"
		"(segment, block, threshold, min_foreground, margin: the fingerprint's segmentation).\n"
		"See bio-prep(1).\n");
}

/* Appends s (len bytes; NULL: only reserves them) and a NUL to job->strs; returns the offset
 * or -1 on ENOMEM. */
static long long job_add_str(struct prep_job *job, size_t *used, const char *s, size_t len)
{
	if (*used + len + 1 > job->strs_cap) {
		size_t cap = job->strs_cap ? job->strs_cap : 256;
		while (cap < *used + len + 1)
			cap *= 2;
		char *p = realloc(job->strs, cap);
		if (!p)
			return -1;
		job->strs = p;
		job->strs_cap = cap;
	}
	size_t off = *used;
	if (s)
		memcpy(job->strs + off, s, len);
	job->strs[off + len] = '\0';
	*used += len + 1;
	return (long long)off;
}

/* Appends root "/" path (or path alone when it is absolute or root is NULL); offset or -1. */
static long long job_add_path(struct prep_job *job, size_t *used, const char *root,
			      const char *path, size_t len)
{
	if (!root || (len > 0 && path[0] == '/'))
		return job_add_str(job, used, path, len);
	size_t rl = strlen(root);
	long long off = job_add_str(job, used, NULL, rl + 1 + len);
	if (off >= 0) {
		char *p = job->strs + off;
		memcpy(p, root, rl);
		p[rl] = '/';
		memcpy(p + rl + 1, path, len);
	}
	return off;
}

static void prep_work(void *ud, int worker, void *slot)
{
	const struct prep_ctx *ctx = ud;
	struct prep_job *job = slot;

	job->rc = 0;
	memset(job->fp, 0, sizeof job->fp);
	for (int m = 0; m < ctx->n_mod && job->rc == 0; m++)
		job->rc = bio_prep_file_info(job->out + (size_t)m * ctx->pixels,
					     job->strs + job->off_path[m], &ctx->params[m],
					     ctx->scratch[worker], &job->fp[m], &job->err);
}

/* Writes the samples header: the input meta's keys carried forward, ours replaced. */
static int write_header(struct bio_stream_writer *w, const struct bio_value *meta,
			const struct bio_prep_params *p, char *const *modalities, int n_mod,
			const char *digest)
{
	static const char *const own[] = {"program", "version", "shape", "normalize", "resize",
					  "quantize", "prep_digest", "segment"};
	const size_t n_own = sizeof(own) / sizeof(own[0]);
	size_t n_keep = 0, n = bio_value_len(meta);

	int segmented = 0;
	for (int m = 0; m < n_mod; m++)
		segmented |= p[m].fp.enabled;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			bio_stream_begin_header(w, "samples");
			bio_pack_map(w, n_keep + n_own - !segmented);
		}
		for (size_t i = 0; i < n; i++) {
			const char *key;
			size_t key_len;
			const struct bio_value *v = bio_value_map_at(meta, i, &key, &key_len);
			int mine = !key;
			for (size_t k = 0; k < n_own && !mine; k++)
				mine = strlen(own[k]) == key_len && memcmp(own[k], key, key_len) == 0;
			if (mine)
				continue;
			if (pass == 0) {
				n_keep++;
			} else {
				bio_pack_strn(w, key, key_len);
				bio_pack_value(w, v);
			}
		}
	}
	bio_pack_kv_str(w, "program", "bio-prep");
	bio_pack_kv_str(w, "version", BIO_VERSION);
	bio_pack_str(w, "shape");
	bio_pack_array(w, 3);
	bio_pack_int(w, 1);
	bio_pack_int(w, p->size);
	bio_pack_int(w, p->size);
	bio_pack_str(w, "normalize");
	bio_pack_map(w, 2);
	bio_pack_kv_double(w, "mean", p->mean);
	bio_pack_kv_double(w, "std", p->std);
	bio_pack_kv_str(w, "resize", p->filter == BIO_RESIZE_AREA ? "area" : "bilinear");
	bio_pack_str(w, "quantize");
	bio_pack_bool(w, p->quantize);
	/* segment: {modality: {block, threshold, min_foreground, margin}} for the modalities
	 * segmented (absent when none: the stream is then as it always was) */
	int n_seg = 0;
	for (int m = 0; m < n_mod; m++)
		n_seg += p[m].fp.enabled;
	if (n_seg > 0) {
		bio_pack_str(w, "segment");
		bio_pack_map(w, (size_t)n_seg);
	}
	for (int m = 0; m < n_mod; m++) {
		if (!p[m].fp.enabled)
			continue;
		bio_pack_str(w, modalities[m]);
		bio_pack_map(w, 4);
		bio_pack_kv_int(w, "block", p[m].fp.block);
		bio_pack_kv_double(w, "threshold", p[m].fp.threshold);
		bio_pack_kv_double(w, "min_foreground", p[m].fp.min_foreground);
		bio_pack_kv_int(w, "margin", p[m].fp.margin);
	}
	return bio_pack_kv_str(w, "prep_digest", digest);
}

static int write_sample(struct bio_stream_writer *w, const struct prep_job *job,
			const struct bio_prep_params *p, char *const *modalities, int n_mod,
			uint32_t size)
{
	int64_t shape[3] = {1, size, size};
	size_t pixels = (size_t)size * size;
	int n_seg = 0;
	for (int m = 0; m < n_mod; m++)
		n_seg += p[m].fp.enabled;

	bio_stream_begin_record(w);
	bio_pack_map(w, 4 + (size_t)n_mod + (n_seg > 0));
	bio_pack_kv_str(w, "id", job->strs + job->off_id);
	bio_pack_kv_int(w, "label", job->label);
	bio_pack_kv_str(w, "identity", job->strs + job->off_identity);
	bio_pack_kv_str(w, "split", job->strs + job->off_split);
	int rc = 0;
	for (int m = 0; m < n_mod; m++) {
		struct bio_tensor t;
		bio_tensor_view(&t, BIO_DTYPE_F32, 3, shape, job->out + (size_t)m * pixels);
		bio_pack_str(w, modalities[m]);
		rc = bio_pack_tensor(w, &t);
	}
	if (n_seg > 0) { /* segment: {modality: {foreground, crop: [x, y, side], mean, std}} */
		bio_pack_str(w, "segment");
		bio_pack_map(w, (size_t)n_seg);
		for (int m = 0; m < n_mod; m++) {
			if (!p[m].fp.enabled)
				continue;
			const struct bio_fp_segment_info *f = &job->fp[m];
			bio_pack_str(w, modalities[m]);
			bio_pack_map(w, 4);
			bio_pack_kv_double(w, "foreground", f->foreground);
			bio_pack_str(w, "crop");
			bio_pack_array(w, 3);
			bio_pack_int(w, f->crop_x);
			bio_pack_int(w, f->crop_y);
			bio_pack_int(w, f->side);
			bio_pack_kv_double(w, "mean", f->mean);
			rc = bio_pack_kv_double(w, "std", f->std);
		}
	}
	return rc;
}

/* Copies the fields of manifest record rec into job; resolves relative paths against root. */
static int job_fill(struct prep_job *job, struct bio_stream_reader *r, const struct bio_value *rec,
		    const struct bio_header *h, const char *root, struct bio_error *err)
{
	const char *s;
	size_t len, used = 0;
	long long off;
	int rc;

	char *const *modalities = h->modalities;
	int n_mod = h->n_mod;
	job->index = bio_stream_reader_record_index(r);
	if ((rc = bio_record_get_label(&job->label, h, r, rec, "label", 0, err)) < 0)
		return rc;
	static const char *const keys[] = {"id", "identity", "split"};
	size_t *offs[] = {&job->off_id, &job->off_identity, &job->off_split};
	for (int k = 0; k < 3; k++) {
		if ((rc = bio_record_get_str(&s, &len, r, rec, keys[k], err)) < 0)
			return rc;
		if ((off = job_add_str(job, &used, s, len)) < 0)
			goto nomem;
		*offs[k] = (size_t)off;
	}
	for (int m = 0; m < n_mod; m++) {
		if ((rc = bio_record_get_str(&s, &len, r, rec, modalities[m], err)) < 0)
			return rc;
		if (memchr(s, '\0', len))
			return bio_error_set(err, BIO_EFORMAT, "%s: record %llu: key '%s': NUL in path",
					     bio_stream_reader_source(r),
					     (unsigned long long)job->index, modalities[m]);
		if ((off = job_add_path(job, &used, root, s, len)) < 0)
			goto nomem;
		job->off_path[m] = (size_t)off;
	}
	return 0;
nomem:
	return bio_error_set(err, BIO_ENOMEM, "%s: record %llu: out of memory",
			     bio_stream_reader_source(r), (unsigned long long)job->index);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		BIO_TOOL_LONG_OPTS,
		{"keep-going", no_argument, 0, 'k'},
		{"max-failures", required_argument, 0, 'F'},
		{"shard", required_argument, 0, 'S'},
		{"root", required_argument, 0, 'R'},
		{0, 0, 0, 0},
	};
	struct bio_tool t;
	struct bio_error err = {0};
	int keep_going = 0, opt;
	long long max_failures = -1, shard_i = 0, shard_n = 1;
	const char *root_opt = NULL;

	bio_tool_init(&t, "bio-prep", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "k", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'k':
			keep_going = 1;
			break;
		case 'F':
			max_failures = bio_tool_parse_count(&t, "--max-failures", optarg, 0,
							    INT64_MAX);
			bio_tool_option_key(&t, "--max-failures", "prep.max_failures", optarg);
			break;
		case 'S':
			bio_tool_parse_shard(&t, optarg, &shard_i, &shard_n);
			break;
		case 'R':
			root_opt = optarg;
			break;
		}
	}
	bio_tool_load_config(&t);

	struct bio_prep_params params; /* (the settings every modality shares) */
	if (bio_prep_params_from_config(&params, t.cfg, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (max_failures < 0) {
		int64_t mf;
		if (bio_config_get_int_range(t.cfg, "prep.max_failures", 0, INT64_MAX, &mf,
					     &err) < 0)
			bio_tool_die_err(&t, &err);
		max_failures = mf;
	}
	static const char *const digest_keys[] = {"prep"};
	char digest[65];
	if (bio_config_digest(t.cfg, digest_keys, 1, digest, &err) < 0)
		bio_tool_die_err(&t, &err);

	/* Inputs: files, or standard input. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	struct bio_header h; /* modalities named by the header; labels when it has them */
	if (bio_header_read(&h, r, "manifest", BIO_HEADER_MODALITIES, &err) < 0)
		bio_tool_die_err(&t, &err);
	const struct bio_value *meta = h.meta;
	char *const *modalities = h.modalities;
	size_t n_mod = (size_t)h.n_mod;
	struct bio_prep_params mod_params[PREP_MAX_MODALITIES];
	for (size_t m = 0; m < n_mod; m++)
		if (bio_prep_params_for_modality(&mod_params[m], t.cfg, modalities[m], &err) < 0)
			bio_tool_die_err(&t, &err);
	/* Manifest paths are used as written (bio-scan writes them with its root in front). */
	char *root = root_opt && root_opt[0] ? strdup(root_opt) : NULL;

	FILE *out = bio_tool_output_open_stream(&t);
	struct bio_stream_writer *w = bio_stream_writer_new(out, &err);
	if (!w)
		bio_tool_die_err(&t, &err);
	bio_stream_writer_set_name(w, bio_tool_output_name(&t));
	write_header(w, meta, mod_params, modalities, (int)n_mod, digest);

	/* The ordered map and its slots: a few per thread keeps the workers busy. */
	int n_threads = t.n_threads > 1 ? t.n_threads : 1;
	size_t window = n_threads > 1 ? (size_t)n_threads * 4 : 1;
	size_t pixels = (size_t)params.size * params.size;
	struct prep_ctx ctx = {mod_params, (int)n_mod, pixels, NULL};
	struct prep_job *jobs = calloc(window, sizeof(*jobs));
	struct prep_job **free_jobs = calloc(window, sizeof(*free_jobs));
	ctx.scratch = calloc((size_t)n_threads, sizeof(*ctx.scratch));
	if (!jobs || !free_jobs || !ctx.scratch)
		bio_tool_die(&t, "out of memory");
	for (int i = 0; i < n_threads; i++)
		if (!(ctx.scratch[i] = bio_prep_scratch_new()))
			bio_tool_die(&t, "out of memory");
	size_t n_free = window;
	for (size_t i = 0; i < window; i++) {
		jobs[i].out = malloc(n_mod * pixels * sizeof(float));
		if (!jobs[i].out)
			bio_tool_die(&t, "out of memory for %zu samples of %zu floats", window,
				     n_mod * pixels);
		free_jobs[i] = &jobs[i];
	}
	struct bio_omap *map = bio_omap_new(n_threads, window, prep_work, &ctx, &err);
	if (!map)
		bio_tool_die_err(&t, &err);

	/* Main loop: read records into free slots, collect finished ones in order, write them. */
	long long n_failed = 0, n_seg_failed = 0, n_done = 0;
	int input_done = 0, fatal = 0, stopped = 0;
	while (!fatal && !stopped) {
		while (!input_done && n_free > 0) {
			const struct bio_value *rec;
			int rc = bio_stream_read_record(r, &rec, &err);
			if (rc < 0) {
				fatal = 1;
				break;
			}
			if (rc == 0) {
				input_done = 1;
				break;
			}
			if ((long long)(bio_stream_reader_record_index(r) % (uint64_t)shard_n) !=
			    shard_i)
				continue;
			struct prep_job *job = free_jobs[--n_free];
			if (job_fill(job, r, rec, &h, root, &err) < 0) {
				fatal = 1;
				break;
			}
			bio_omap_submit(map, job);
		}
		if (fatal)
			break;
		struct prep_job *job = bio_omap_collect(map);
		if (!job)
			break; /* input done and nothing in flight */
		free_jobs[n_free++] = job;
		if (job->rc < 0) {
			if (!keep_going) {
				err = job->err;
				fatal = 1;
				break;
			}
			bio_tool_warn(&t, "%s", job->err.msg);
			n_failed++;
			for (size_t m = 0; m < n_mod; m++)
				n_seg_failed += mod_params[m].fp.enabled && job->fp[m].failed;
			continue;
		}
		int rc = write_sample(w, job, mod_params, modalities, (int)n_mod, params.size);
		if (rc == BIO_EPIPE)
			stopped = 1; /* downstream went away: stop quietly */
		else if (rc < 0)
			break; /* a write error: reported by bio_stream_finish below */
		bio_tool_progress(&t, "samples", (unsigned long long)++n_done, 0);
	}
	bio_tool_progress_end(&t);
	bio_omap_free(map);
	if (fatal)
		bio_tool_die_err(&t, &err);

	/* segment_failed: those of the failures a segmentation refused (when one runs) */
	int segmented = 0;
	for (size_t m = 0; m < n_mod; m++)
		segmented |= mod_params[m].fp.enabled;
	const char *extra_keys[] = {"failed", "segment_failed"};
	int64_t extra_values[] = {n_failed, n_seg_failed};
	int rc = bio_stream_finish(w, segmented ? 2 : 1, extra_keys, extra_values, &err);
	if (rc < 0)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE (reader went away): exits 0 quietly */
	bio_stream_writer_free(w);
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr, "bio-prep: %lld samples written, %lld failed, %d thread%s\n", n_done,
			n_failed, n_threads, n_threads == 1 ? "" : "s");

	for (size_t i = 0; i < window; i++) {
		free(jobs[i].out);
		free(jobs[i].strs);
	}
	free(jobs);
	free(free_jobs);
	for (int i = 0; i < n_threads; i++)
		bio_prep_scratch_free(ctx.scratch[i]);
	free(ctx.scratch);
	bio_header_destroy(&h);
	free(root);
	bio_stream_reader_free(r);
	bio_config_free(t.cfg);
	if (n_failed > max_failures) {
		fprintf(stderr, "bio-prep: %lld samples failed (allowed: %lld)\n", n_failed,
			max_failures);
		return BIO_EXIT_RUNTIME;
	}
	return BIO_EXIT_OK;
}
