/* bio-prep: turns a manifest stream (one record per sample, one image path per modality) into a
 * samples stream (one normalised f32 tensor [1,S,S] per modality). Images are decoded, converted
 * to gray, resized and normalised on -j threads through an ordered map, so the output is
 * byte-identical for every thread count and memory does not depend on the number of images.
 * --shard i/n keeps the records whose index modulo n is i: shards run apart (GNU parallel) and
 * joined with cat hold the same records as one run. */
#include <stdlib.h>
#include <string.h>

#include "bio/header.h"
#include "bio/prep.h"
#include "bio/prep_run.h"
#include "bio/stream.h"
#include "tool.h"

/* 1 when modality params p run a segmentation (fingerprint or iris) before the resize. */
static int segmented(const struct bio_prep_params *p)
{
	return p->fp.enabled || p->iris.enabled;
}

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
		"(segment, block, threshold, min_foreground, margin: the fingerprint's segmentation),\n"
		"prep.iris.* (segment, strip_height, strip_width: the iris's segmentation and strip).\n"
		"See bio-prep(1).\n");
}

/* The key "segment" and its map {modality: pack_one(the modality's params, its index, ctx)} over
 * the n_seg segmented modalities; nothing when n_seg is 0. The status of the last pack. */
static int pack_segment(struct bio_stream_writer *w, const struct bio_prep_params *p,
			char *const *modalities, int n_mod, size_t n_seg,
			int (*pack_one)(struct bio_stream_writer *w, const struct bio_prep_params *pm,
					int m, const void *ctx),
			const void *ctx)
{
	int rc = 0;
	if (n_seg == 0)
		return 0;
	bio_pack_str(w, "segment");
	bio_pack_map(w, n_seg);
	for (int m = 0; m < n_mod; m++) {
		if (!segmented(&p[m]))
			continue;
		bio_pack_str(w, modalities[m]);
		rc = pack_one(w, &p[m], m, ctx);
	}
	return rc;
}

/* The header's settings of a segmented modality: {strip: [height, width]} or {block, threshold,
 * min_foreground, margin}. */
static int pack_settings(struct bio_stream_writer *w, const struct bio_prep_params *pm, int m,
			 const void *ctx)
{
	(void)m;
	(void)ctx;
	if (pm->iris.enabled) {
		bio_pack_map(w, 1);
		bio_pack_str(w, "strip");
		bio_pack_array(w, 2);
		bio_pack_int(w, pm->iris.strip_height);
		return bio_pack_int(w, pm->iris.strip_width);
	}
	bio_pack_map(w, 4);
	bio_pack_kv_int(w, "block", pm->fp.block);
	bio_pack_kv_double(w, "threshold", pm->fp.threshold);
	bio_pack_kv_double(w, "min_foreground", pm->fp.min_foreground);
	return bio_pack_kv_int(w, "margin", pm->fp.margin);
}

/* What the segmentation of modality m found in the job (ctx): {pupil: [x, y, r], iris: [x, y, r]}
 * or {foreground, crop: [x, y, side], mean, std}. */
static int pack_found(struct bio_stream_writer *w, const struct bio_prep_params *pm, int m,
		      const void *ctx)
{
	const struct bio_prep_job *job = ctx;
	int rc = 0;
	if (pm->iris.enabled) {
		const struct bio_iris_segment_info *g = &job->iris[m];
		bio_pack_map(w, 2);
		bio_pack_str(w, "pupil");
		bio_pack_array(w, 3);
		for (int k = 0; k < 3; k++)
			bio_pack_double(w, g->pupil[k]);
		bio_pack_str(w, "iris");
		rc = bio_pack_array(w, 3);
		for (int k = 0; k < 3; k++)
			rc = bio_pack_double(w, g->iris[k]);
		return rc;
	}
	const struct bio_fp_segment_info *f = &job->fp[m];
	bio_pack_map(w, 4);
	bio_pack_kv_double(w, "foreground", f->foreground);
	bio_pack_str(w, "crop");
	bio_pack_array(w, 3);
	bio_pack_int(w, f->crop_x);
	bio_pack_int(w, f->crop_y);
	bio_pack_int(w, f->side);
	bio_pack_kv_double(w, "mean", f->mean);
	return bio_pack_kv_double(w, "std", f->std);
}

/* Writes the samples header: the input meta's keys carried forward, ours replaced, with the
 * digest of cfg's prep section. BIO_ENOTFOUND (err set) when cfg has none. */
static int write_header(struct bio_stream_writer *w, const struct bio_value *meta,
			const struct bio_prep_params *p, char *const *modalities, int n_mod,
			const struct bio_config *cfg, struct bio_error *err)
{
	static const char *const digest_keys[] = {"prep"};
	char digest[65];
	int rc = bio_config_digest(cfg, digest_keys, 1, digest, err);
	if (rc < 0)
		return rc;
	static const char *const own[] = {"program", "version", "shape", "normalize", "resize",
					  "quantize", "prep_digest", "segment"};
	const size_t n_own = sizeof(own) / sizeof(own[0]);
	size_t n_seg = 0;
	for (int m = 0; m < n_mod; m++)
		n_seg += (size_t)segmented(&p[m]);
	/* (segment only when a modality is segmented) */
	bio_stream_begin_header_carry(w, "samples", meta, own, n_own, n_own - (n_seg == 0));
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
	pack_segment(w, p, modalities, n_mod, n_seg, pack_settings, NULL);
	return bio_pack_kv_str(w, "prep_digest", digest);
}

static int write_sample(struct bio_stream_writer *w, const struct bio_prep_job *job,
			const struct bio_prep_params *p, char *const *modalities, int n_mod,
			uint32_t size)
{
	int64_t shape[3] = {1, size, size};
	size_t pixels = (size_t)size * size, n_seg = 0;
	for (int m = 0; m < n_mod; m++)
		n_seg += (size_t)segmented(&p[m]);

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
	if (n_seg > 0)
		rc = pack_segment(w, p, modalities, n_mod, n_seg, pack_found, job);
	return rc;
}

/* The next record of r whose index modulo shard_n is shard_i: 1, 0 at the end, <0 on error. */
static int next_in_shard(struct bio_stream_reader *r, const struct bio_value **rec,
			 long long shard_i, long long shard_n, struct bio_error *err)
{
	int rc;
	do
		rc = bio_stream_read_record(r, rec, err);
	while (rc == 1 &&
	       (long long)(bio_stream_reader_record_index(r) % (uint64_t)shard_n) != shard_i);
	return rc;
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
	long long shard_i = 0, shard_n = 1;
	const char *root_opt = NULL;

	bio_tool_init(&t, "bio-prep", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "k", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 'k':
			keep_going = 1;
			break;
		case 'F':
			bio_tool_parse_count(&t, "--max-failures", optarg, 0, INT64_MAX);
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

	struct bio_prep_params params; /* (what every modality shares) */
	if (bio_prep_params_from_config(&params, t.cfg, &err) < 0)
		bio_tool_die_err(&t, &err);
	int64_t max_failures; /* --max-failures is a --set of it */
	if (bio_config_get_int_range(t.cfg, "prep.max_failures", 0, INT64_MAX, &max_failures,
				     &err) < 0)
		bio_tool_die_err(&t, &err);

	/* Inputs: files, or standard input. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	struct bio_header h; /* modalities named by the header; labels when it has them */
	if (bio_header_read(&h, r, "manifest", BIO_HEADER_MODALITIES, &err) < 0)
		bio_tool_die_err(&t, &err);
	struct bio_prep_params mod_params[BIO_HEADER_MAX_MODS]; /* each modality's own */
	int any_segmented = 0;
	for (int m = 0; m < h.n_mod; m++) {
		if (bio_prep_params_for_modality(&mod_params[m], t.cfg, h.modalities[m], &err) < 0)
			bio_tool_die_err(&t, &err);
		any_segmented |= segmented(&mod_params[m]);
	}
	/* Manifest paths are used as written (bio-scan writes them with its root in front). */
	const char *root = root_opt && root_opt[0] ? root_opt : NULL;

	FILE *out = bio_tool_output_open_stream(&t);
	struct bio_stream_writer *w = bio_stream_writer_new(out, &err);
	if (!w)
		bio_tool_die_err(&t, &err);
	bio_stream_writer_set_name(w, bio_tool_output_name(&t));
	if (write_header(w, h.meta, mod_params, h.modalities, h.n_mod, t.cfg, &err) < 0 &&
	    err.code) /* the digest */
		bio_tool_die_err(&t, &err);

	struct bio_prep_run *run = bio_prep_run_new(mod_params, h.n_mod, t.n_threads, &err);
	if (!run)
		bio_tool_die_err(&t, &err);

	/* Main loop: read records into free slots, collect finished ones in order, write them. */
	long long n_failed = 0, n_seg_failed = 0, n_done = 0;
	int input_done = 0, fatal = 0, stopped = 0;
	struct bio_prep_job *job;
	while (!fatal && !stopped) {
		while (!input_done && (job = bio_prep_run_slot(run))) {
			const struct bio_value *rec;
			int rc = next_in_shard(r, &rec, shard_i, shard_n, &err);
			input_done = rc == 0;
			fatal = rc < 0 || (rc == 1 && bio_prep_job_fill(job, r, rec, &h, root, &err) < 0);
			if (rc != 1 || fatal)
				break;
			bio_prep_run_submit(run, job);
		}
		if (fatal || !(job = bio_prep_run_collect(run)))
			break; /* an error, or input done and nothing in flight */
		if (job->rc < 0) {
			if (!keep_going) {
				err = job->err;
				fatal = 1;
				break;
			}
			bio_tool_warn(&t, "%s", job->err.msg);
			n_failed++;
			for (int m = 0; m < h.n_mod; m++)
				n_seg_failed += (mod_params[m].fp.enabled && job->fp[m].failed) ||
						(mod_params[m].iris.enabled && job->iris[m].failed);
			continue;
		}
		int rc = write_sample(w, job, mod_params, h.modalities, h.n_mod, params.size);
		if (rc == BIO_EPIPE)
			stopped = 1; /* downstream went away: stop quietly */
		else if (rc < 0)
			break; /* a write error: reported by bio_stream_finish below */
		bio_tool_progress(&t, "samples", (unsigned long long)++n_done, 0);
	}
	bio_tool_progress_end(&t);
	bio_prep_run_free(run);
	if (fatal)
		bio_tool_die_err(&t, &err);

	/* (segment_failed: those of the failures a segmentation refused, when one runs) */
	const char *extra_keys[] = {"failed", "segment_failed"};
	int64_t extra_values[] = {n_failed, n_seg_failed};
	int rc = bio_stream_finish(w, any_segmented ? 2 : 1, extra_keys, extra_values, &err);
	if (rc < 0)
		bio_tool_die_err(&t, &err); /* BIO_EPIPE (reader went away): exits 0 quietly */
	bio_stream_writer_free(w);
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr, "bio-prep: %lld samples written, %lld failed, %d thread%s\n", n_done,
			n_failed, t.n_threads, t.n_threads == 1 ? "" : "s");

	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	bio_config_free(t.cfg);
	if (n_failed > max_failures) {
		fprintf(stderr, "bio-prep: %lld samples failed (allowed: %lld)\n", n_failed,
			(long long)max_failures);
		return BIO_EXIT_RUNTIME;
	}
	return BIO_EXIT_OK;
}
