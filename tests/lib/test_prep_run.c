/* Unit tests of lib/prep_run.c: manifest records filled into job slots (paths under a root), the
 * images prepared on 1 and 3 threads and handed back in submission order with the values
 * bio_prep_file gives, a bad image as the job's own error. */
#include "bio/prep_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bio/image.h"
#include "test.h"

enum { N_REC = 9, W = 12 };

static char dir[] = "/tmp/bio-test-prep-run-XXXXXX";

/* A manifest stream in memory: N_REC records "s<i>", label i % 3, iris img<i>.png (relative);
 * record 5 names a file that is not there. */
static void manifest(char **data, size_t *len)
{
	FILE *f = open_memstream(data, len);
	struct bio_stream_writer *w = bio_stream_writer_new(f, NULL);
	BIO_ASSERT(f && w);
	bio_stream_begin_header(w, "manifest");
	bio_pack_map(w, 1);
	bio_pack_str(w, "modalities");
	bio_pack_array(w, 1);
	bio_pack_str(w, "iris");
	for (int i = 0; i < N_REC; i++) {
		char id[16], path[32];
		snprintf(id, sizeof id, "s%d", i);
		snprintf(path, sizeof path, i == 5 ? "missing.png" : "img%d.png", i);
		bio_stream_begin_record(w);
		bio_pack_map(w, 5);
		bio_pack_kv_str(w, "id", id);
		bio_pack_kv_int(w, "label", i % 3);
		bio_pack_kv_str(w, "identity", "p");
		bio_pack_kv_str(w, "split", "train");
		bio_pack_kv_str(w, "iris", path);
	}
	BIO_ASSERT(bio_stream_finish(w, 0, NULL, NULL, NULL) == 0);
	bio_stream_writer_free(w);
	fclose(f);
}

TEST(prep_run_in_order_on_any_thread_count)
{
	struct bio_error err = {0};
	uint8_t px[W * W];
	char path[512];
	for (int i = 0; i < N_REC; i++) {
		for (int k = 0; k < W * W; k++)
			px[k] = (uint8_t)(i * 20 + k);
		snprintf(path, sizeof path, "%s/img%d.png", dir, i);
		CHECK_EQ(bio_image_save_png(path, px, W, W, 1, &err), 0);
	}
	struct bio_prep_params p;
	bio_prep_params_default(&p);
	p.size = 8;
	char *data;
	size_t len;
	manifest(&data, &len);
	static const int threads[] = {1, 3};
	for (int ti = 0; ti < 2; ti++) {
		struct bio_stream_reader *r = bio_stream_reader_open_mem(data, len, "m.bs", NULL, &err);
		CHECK(r != NULL);
		struct bio_header h;
		CHECK_EQ(bio_header_read(&h, r, "manifest", BIO_HEADER_MODALITIES, &err), 0);
		struct bio_prep_run *run = bio_prep_run_new(&p, 1, threads[ti], &err);
		CHECK(run != NULL);
		if (!r || !run)
			return;
		int n_in = 0, n_out = 0, input_done = 0;
		for (;;) {
			struct bio_prep_job *job;
			while (!input_done && (job = bio_prep_run_slot(run))) {
				const struct bio_value *rec;
				int rc = bio_stream_read_record(r, &rec, &err);
				CHECK(rc >= 0);
				if (rc != 1) {
					input_done = 1;
					break;
				}
				CHECK_EQ(bio_record_in_split(r, rec, "train", &err), 1);
				CHECK_EQ(bio_record_in_split(r, rec, "val", &err), 0);
				CHECK_EQ(bio_prep_job_fill(job, r, rec, &h, dir, &err), 0);
				bio_prep_run_submit(run, job);
				n_in++;
			}
			if (!(job = bio_prep_run_collect(run)))
				break;
			/* in the order submitted, with the record's strings */
			CHECK_EQ((int)job->index, n_out);
			char want_id[16];
			snprintf(want_id, sizeof want_id, "s%d", n_out);
			CHECK_STR(job->strs + job->off_id, want_id);
			CHECK_EQ(job->label, n_out % 3);
			CHECK_STR(job->strs + job->off_split, "train");
			if (n_out == 5) {
				CHECK(job->rc < 0);
				CHECK(strstr(job->err.msg, "missing.png") != NULL);
			} else {
				float want[64];
				snprintf(path, sizeof path, "%s/img%d.png", dir, n_out);
				CHECK_STR(job->strs + job->off_path[0], path);
				CHECK_EQ(job->rc, 0);
				CHECK_EQ(bio_prep_file(want, path, &p, NULL, &err), 0);
				CHECK(memcmp(job->out, want, sizeof want) == 0);
			}
			n_out++;
		}
		CHECK_EQ(n_in, N_REC);
		CHECK_EQ(n_out, N_REC);
		bio_prep_run_free(run);
		bio_header_destroy(&h);
		bio_stream_reader_free(r);
	}
	free(data);
	bio_prep_run_free(NULL);
}

TEST_MAIN_IN_TMPDIR(dir, TEST_CASE(prep_run_in_order_on_any_thread_count))
