/* The training engine (lib/train.c) on a tiny batches stream written here: the epoch lines come
 * through the say hook, last.ckpt and best.ckpt are written, a run resumed from the first
 * epoch's last.ckpt ends with the same bytes as the uninterrupted run, the upstream values are
 * recorded in the config, and the resume refusals name the config key and both values. Reads
 * configs/base.yaml (make unit runs from the source tree). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bio/checkpoint.h"
#include "bio/config.h"
#include "bio/rng.h"
#include "bio/stream.h"
#include "bio/tensor.h"
#include "bio/train.h"
#include "test.h"

#define SIDE 8
#define BATCH 4

static char tmp[] = "/tmp/test_train.XXXXXX";

struct said {
	char lines[64][BIO_ERROR_MSG_MAX];
	int n;
};

static void say(void *ud, const char *msg)
{
	struct said *s = ud;
	if (s->n < 64)
		snprintf(s->lines[s->n++], BIO_ERROR_MSG_MAX, "%s", msg);
}

static struct bio_config *base_config(void *ud)
{
	(void)ud;
	static char *text;
	static size_t len;
	if (!text) {
		FILE *f = fopen("configs/base.yaml", "rb");
		if (!f)
			return NULL;
		text = malloc(1 << 20);
		len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
		fclose(f);
	}
	struct bio_config *c = bio_config_new();
	struct bio_error err;
	if (!c || !text || bio_config_load_base(c, "configs/base.yaml", text, len, &err)) {
		bio_config_free(c);
		return NULL;
	}
	return c;
}

static struct bio_config *small_config(const char *extra)
{
	struct bio_config *c = base_config(NULL);
	const char *sets[] = {"model.input_size=8", "model.channels=[2]", "model.hidden=8",
			      "model.embedding=4", "tracking.enabled=false", "training.lr=0.01"};
	struct bio_error err;
	for (size_t i = 0; c && i < sizeof sets / sizeof sets[0]; i++)
		CHECK_EQ(bio_config_set(c, sets[i], &err), 0);
	if (c && extra)
		CHECK_EQ(bio_config_set(c, extra, &err), 0);
	return c;
}

/* A batches stream of epochs [start, end) of `epochs`, 2 batches of BATCH samples each, 3
 * classes, into path. */
static void write_batches(const char *path, int64_t start, int64_t end, int64_t epochs)
{
	FILE *f = fopen(path, "wb");
	struct bio_error err;
	struct bio_stream_writer *w = f ? bio_stream_writer_new(f, &err) : NULL;
	CHECK(w != NULL);
	if (!w)
		return;
	const char *mods[2] = {"iris", "fingerprint"}, *labels[3] = {"a", "b", "c"};
	bio_stream_begin_header(w, "batches");
	bio_pack_map(w, 8);
	bio_pack_kv_int(w, "batch_size", BATCH);
	bio_pack_kv_int(w, "epochs", epochs);
	bio_pack_kv_int(w, "start_epoch", start);
	bio_pack_kv_int(w, "batches_per_epoch", 2);
	bio_pack_kv_str(w, "split", "train");
	bio_pack_str(w, "shape");
	bio_pack_array(w, 3);
	bio_pack_int(w, 1);
	bio_pack_int(w, SIDE);
	bio_pack_int(w, SIDE);
	bio_pack_str(w, "modalities");
	bio_pack_array(w, 2);
	for (int m = 0; m < 2; m++)
		bio_pack_str(w, mods[m]);
	bio_pack_str(w, "labels");
	bio_pack_array(w, 3);
	for (int i = 0; i < 3; i++)
		bio_pack_str(w, labels[i]);
	float x[BATCH * SIDE * SIDE];
	int64_t lab[BATCH];
	for (int64_t e = start; e < end; e++)
		for (int64_t b = 0; b < 2; b++) {
			struct bio_rng rng;
			bio_rng_seed3(&rng, 7, 1, (uint64_t)e, (uint64_t)b);
			bio_stream_begin_record(w);
			bio_pack_map(w, 5);
			bio_pack_kv_int(w, "epoch", e);
			bio_pack_kv_int(w, "index", b);
			for (int i = 0; i < BATCH; i++)
				lab[i] = (i + b + e) % 3;
			struct bio_tensor t;
			int64_t lshape[1] = {BATCH}, shape[4] = {BATCH, 1, SIDE, SIDE};
			bio_tensor_view(&t, BIO_DTYPE_I64, 1, lshape, lab);
			bio_pack_str(w, "label");
			bio_pack_tensor(w, &t);
			for (int m = 0; m < 2; m++) {
				for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
					x[i] = (float)bio_rng_uniform(&rng) +
					       (float)lab[i / (SIDE * SIDE)] * 0.5f;
				bio_tensor_view(&t, BIO_DTYPE_F32, 4, shape, x);
				bio_pack_str(w, mods[m]);
				bio_pack_tensor(w, &t);
			}
		}
	CHECK_EQ(bio_stream_finish(w, 0, NULL, NULL, &err), 0);
	bio_stream_writer_free(w);
	fclose(f);
}

/* Trains cfg (taken) on the batches at path into dir; returns bio_train_run's code. */
static int train(struct bio_config *cfg, const char *path, const char *dir, const char *resume,
		 struct said *said, struct bio_error *err)
{
	struct bio_train_opts o = {.resume = resume, .output_dir = dir, .n_threads = 2,
				   .hooks = {.ud = said, .say = say, .base_config = base_config}};
	struct bio_train *tr = bio_train_new(cfg, &o, err);
	CHECK(tr != NULL);
	const char *paths[1] = {path};
	struct bio_stream_limits lim;
	bio_stream_limits_default(&lim);
	struct bio_stream_reader *r = tr ? bio_stream_reader_open(paths, 1, &lim, err) : NULL;
	int rc = r ? bio_train_run(tr, r, err) : -1;
	if (rc == 0)
		CHECK(bio_train_n_params(tr) > 0);
	bio_stream_reader_free(r);
	bio_train_free(tr);
	bio_config_free(cfg);
	return rc;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 22);
	*len = buf ? fread(buf, 1, 1 << 22, f) : 0;
	fclose(f);
	return buf;
}

static int same_file(const char *a, const char *b)
{
	size_t na = 0, nb = 0;
	char *x = slurp(a, &na), *y = slurp(b, &nb);
	int same = x && y && na == nb && na > 0 && memcmp(x, y, na) == 0;
	free(x);
	free(y);
	return same;
}

TEST(train_and_resume)
{
	char all[512], first[512], rest[512], d1[256], d2[256], p[512], q[512];
	struct bio_error err = {0};
	struct said said = {.n = 0};
	snprintf(all, sizeof all, "%s/all.bs", tmp);
	snprintf(first, sizeof first, "%s/first.bs", tmp);
	snprintf(rest, sizeof rest, "%s/rest.bs", tmp);
	snprintf(d1, sizeof d1, "%s/full", tmp);
	snprintf(d2, sizeof d2, "%s/part", tmp);
	write_batches(all, 0, 3, 3);
	write_batches(first, 0, 1, 3);
	write_batches(rest, 1, 3, 3);
	int rc = train(small_config(NULL), all, d1, NULL, &said, &err);
	if (rc)
		fprintf(stderr, "train: %s\n", err.msg);
	CHECK_EQ(rc, 0);
	/* the legend, then one line per epoch */
	CHECK_EQ(said.n, 4);
	CHECK(strncmp(said.lines[0], "each epoch: ", 12) == 0);
	CHECK(strncmp(said.lines[1], "epoch 1/3 loss ", 15) == 0);
	CHECK(strncmp(said.lines[3], "epoch 3/3 loss ", 15) == 0);

	said.n = 0;
	CHECK_EQ(train(small_config(NULL), first, d2, NULL, &said, &err), 0);
	snprintf(p, sizeof p, "%s/last.ckpt", d2);
	said.n = 0;
	rc = train(small_config(NULL), rest, d2, p, &said, &err);
	if (rc)
		fprintf(stderr, "resume: %s\n", err.msg);
	CHECK_EQ(rc, 0);
	CHECK(strncmp(said.lines[1], "epoch 2/3 loss ", 15) == 0);
	snprintf(q, sizeof q, "%s/last.ckpt", d1);
	CHECK(same_file(p, q));
	snprintf(p, sizeof p, "%s/best.ckpt", d2);
	snprintf(q, sizeof q, "%s/best.ckpt", d1);
	CHECK(same_file(p, q));

	/* what ran upstream is recorded: the header's epochs in the checkpoint's config */
	struct bio_model *m = NULL;
	struct bio_ckpt_meta meta;
	memset(&meta, 0, sizeof meta);
	CHECK_EQ(bio_checkpoint_load(&m, NULL, NULL, &meta, q, BATCH, &err), 0);
	CHECK(meta.config_yaml && strstr(meta.config_yaml, "\n  epochs: 3\n") != NULL);
	bio_ckpt_meta_destroy(&meta);
	bio_model_free(m);

	/* the resume refusals name the key and both values */
	snprintf(p, sizeof p, "%s/last.ckpt", d1);
	snprintf(q, sizeof q, "%s/x", tmp);
	rc = train(small_config("model.hidden=6"), rest, q, p, &said, &err);
	CHECK(rc != 0);
	CHECK(strstr(err.msg, "model.hidden 8 in the checkpoint, 6 configured") != NULL);
	rc = train(small_config("experiment.seed=5"), rest, q, p, &said, &err);
	CHECK(rc != 0);
	CHECK(strstr(err.msg, "experiment.seed 42, the config says 5") != NULL);
	rc = train(small_config(NULL), all, q, p, &said, &err);
	CHECK(rc != 0);
	CHECK(strstr(err.msg, "completed 3 epochs; the batches stop at epoch 3 (batch.epochs 3)") !=
	      NULL);
}

TEST(bad_config)
{
	struct bio_error err = {0};
	struct bio_config *c = small_config("training.early_stopping.metric=acc");
	struct bio_train_opts o = {.n_threads = 1};
	CHECK(bio_train_new(c, &o, &err) == NULL);
	CHECK(strstr(err.msg, "training.early_stopping.metric: expected val_accuracy, val_loss or val_eer, "
			      "got 'acc'") != NULL);
	bio_config_free(c);
}

TEST(tracking_helpers)
{
	struct bio_error err = {0};
	struct said said = {.n = 0};
	struct bio_train_hooks h = {.ud = &said, .say = say};
	struct bio_config *c = small_config(NULL);
	CHECK_EQ(bio_train_sync_tracking(c, tmp, &h, &err), BIO_ENOTFOUND);
	CHECK(strstr(err.msg, "no tracking journal") != NULL);
	CHECK_EQ(bio_train_push_tracking(c, tmp, &h, &err), BIO_EUNSUPPORTED);
	CHECK(strstr(err.msg, "--push-tracking needs tracking.uri of a tracking server") != NULL);
	CHECK_EQ(said.n, 0);
	bio_config_free(c);
}

TEST_MAIN_IN_TMPDIR(tmp, TEST_CASE(train_and_resume), TEST_CASE(bad_config),
		    TEST_CASE(tracking_helpers))
