/* bio-batch: turns samples streams into a batches stream for training (the engine is libbio's
 * bio/batch_run.h). It selects one split, shuffles it with an order that depends only on (seed,
 * epoch), cuts it into batches and repeats for the requested epochs; --start-epoch k gives
 * exactly the tail of an uninterrupted run. From regular files memory holds one batch, not the
 * data set; from a pipe the selected samples are held in memory, up to batch.max_buffer_bytes.
 * With augment.enabled, each sample of each epoch is written transformed, and the record carries
 * the drawn parameters (aug_<modality>). */
#include "bio/batch_run.h"
#include "bio/header.h"
#include "bio/stream.h"
#include "tool.h"

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
	long long start_epoch = 0;
	int shuffle = 1, opt;

	bio_tool_init(&t, "bio-batch", argc, argv);
	while ((opt = bio_tool_next_opt(&t, argc, argv, BIO_TOOL_SHORT_OPTS "s:b:E:", long_opts,
					usage)) != -1) {
		switch (opt) {
		case 's': bio_tool_option_key(&t, "--split", "batch.split", optarg); break;
		case 'b':
			bio_tool_option_count(&t, "--batch-size", "batch.batch_size", optarg,
					      1, 1 << 24);
			break;
		case 'E':
			bio_tool_option_count(&t, "--epochs", "batch.epochs", optarg,
					      0, 1000000000);
			break;
		case OPT_START:
			start_epoch = bio_tool_parse_count(&t, "--start-epoch", optarg, 0, 1000000000);
			break;
		case OPT_SEED:
			bio_tool_option_count(&t, "--seed", "batch.seed", optarg, 0, INT64_MAX);
			break;
		case OPT_DROP:
			bio_tool_option_key(&t, "--drop-last", "batch.drop_last", "true");
			break;
		case OPT_NOSHUF: shuffle = 0; break;
		}
	}
	bio_tool_load_config(&t);
	struct bio_batch_opts o; /* the options are --sets of batch.* keys */
	if (bio_batch_opts_from_config(&o, t.cfg, &err) < 0)
		bio_tool_die_err(&t, &err);
	if (start_epoch > o.epochs)
		bio_tool_usage_error(&t, "--start-epoch %lld is past --epochs %lld", start_epoch,
				     (long long)o.epochs);
	o.start_epoch = start_epoch;
	o.shuffle = shuffle;

	/* Inputs: files, or standard input; pass 1 indexes the selected samples. */
	struct bio_stream_reader *r = bio_tool_open_inputs(&t, argc, argv, optind);
	struct bio_header h;
	if (bio_header_read(&h, r, "samples",
			    BIO_HEADER_MODALITIES | BIO_HEADER_LABELS | BIO_HEADER_SHAPE, &err) < 0)
		bio_tool_die_err(&t, &err);
	struct bio_batch_run *run = bio_batch_run_new(r, &h, &o, t.cfg, &err);
	if (!run)
		bio_tool_die_err(&t, &err);
	size_t n_samples, n_held;
	uint64_t per_epoch;
	bio_batch_run_counts(run, &n_samples, &n_held, &per_epoch);
	if (n_samples == 0)
		bio_tool_warn(&t, "no samples of split '%s' in the input", o.split);

	/* Pass 2: the header, then per epoch its batches. */
	struct bio_stream_writer *w = bio_tool_output_writer(&t);
	bio_batch_run_write_header(run, w);
	/* a write error (or a reader that went away) is reported by finish / commit; BIO_EPIPE
	 * (reader went away) exits 0 quietly */
	if (bio_batch_run_write(run, w, &err) < 0 || bio_stream_finish(w, 0, NULL, NULL, &err) < 0)
		bio_tool_die_err(&t, &err);
	bio_stream_writer_free(w);
	bio_tool_output_commit(&t);
	if (t.verbose)
		fprintf(stderr,
			"bio-batch: %zu samples of split '%s' (%zu held in memory from a pipe), "
			"%llu batches per epoch, epochs %lld to %lld\n",
			n_samples, o.split, n_held, (unsigned long long)per_epoch, start_epoch,
			(long long)o.epochs - 1);
	bio_batch_run_free(run);
	bio_header_destroy(&h);
	bio_stream_reader_free(r);
	bio_config_free(t.cfg);
	return BIO_EXIT_OK;
}
