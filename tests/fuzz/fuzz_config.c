/* libFuzzer harness for the configuration reader: the input is loaded as an overlay on a fixed
 * small base, as a base of its own, and (its first line) as a --set assignment. Whatever loads
 * must survive every getter, the leaf walk and the digest, and must dump to YAML that loads back
 * to the same dump and digest (the round trip bio-config(5) promises); a mismatch aborts. */
#include "bio/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_base[] =
	"experiment:\n"
	"  name: default\n"
	"  seed: 42\n"
	"training:\n"
	"  lr: 0.001\n"
	"  nesterov: false\n"
	"  channels: [32, 64]\n"
	"  early_stopping: {metric: val_accuracy, patience: 0}\n"
	"tracking:\n"
	"  tags: {}\n"
	"  run_name: \"\"\n";

static char *dump(const struct bio_config *c)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);
	if (!f)
		abort();
	if (bio_config_dump(c, f, NULL) != 0)
		abort();
	fclose(f);
	return p;
}

static int count_leaf(void *ud, const char *path, const char *value)
{
	(void)value;
	*(size_t *)ud += strlen(path) > 0;
	return 0;
}

/* Runs every reader over c (results ignored: errors are fine, crashes are not). */
static void exercise(const struct bio_config *c)
{
	static const char *const paths[] = {"experiment.seed", "training.lr", "training.nesterov",
					    "training.channels", "tracking.tags", "tracking",
					    "", "a", "a.b", "training.early_stopping.patience"};
	struct bio_error err;
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		int64_t iv;
		double dv;
		int bv;
		const char *sv;
		bio_config_get_int(c, paths[i], &iv, &err);
		bio_config_get_int_range(c, paths[i], -5, 5, &iv, &err);
		bio_config_get_double(c, paths[i], &dv, &err);
		bio_config_get_double_range(c, paths[i], 0, 1, &dv, &err);
		bio_config_get_bool(c, paths[i], &bv, &err);
		bio_config_get_str(c, paths[i], &sv, &err);
		bio_config_has(c, paths[i]);
		bio_config_origin(c, paths[i]);
		size_t n = bio_config_count(c, paths[i]);
		for (size_t k = 0; k <= n && k < 64; k++) {
			bio_config_key_at(c, paths[i], k);
			bio_config_item_at(c, paths[i], k);
		}
	}
	size_t n_leaves = 0;
	bio_config_foreach_leaf(c, count_leaf, &n_leaves);
}

/* Checks that the dump of c loads back (onto base_text, or as a base when NULL) unchanged. */
static void round_trip(const struct bio_config *c, const char *base_text)
{
	char *d1 = dump(c);
	if (strlen(d1) > BIO_CONFIG_MAX_BYTES) {
		/* Block style with indentation can outgrow a compact flow-style input. */
		free(d1);
		return;
	}
	struct bio_config *c2 = bio_config_new();
	struct bio_error err;
	int rc;
	if (base_text) {
		if (bio_config_load_base(c2, "base", base_text, strlen(base_text), &err) != 0)
			abort();
		rc = bio_config_load_overlay(c2, "dump", d1, strlen(d1), &err);
	} else {
		rc = bio_config_load_base(c2, "dump", d1, strlen(d1), &err);
	}
	if (rc != 0) {
		fprintf(stderr, "dump does not load back: %s\n--- dump:\n%s", err.msg, d1);
		abort();
	}
	char *d2 = dump(c2);
	char h1[65], h2[65];
	if (strcmp(d1, d2) != 0 || bio_config_digest(c, NULL, 0, h1, NULL) != 0 ||
	    bio_config_digest(c2, NULL, 0, h2, NULL) != 0 || strcmp(h1, h2) != 0) {
		fprintf(stderr, "round trip changed the config\n--- first:\n%s--- second:\n%s", d1,
			d2);
		abort();
	}
	free(d1);
	free(d2);
	bio_config_free(c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bio_error err;
	const char *text = (const char *)data;

	struct bio_config *c = bio_config_new();
	if (!c || bio_config_load_base(c, "base", fuzz_base, sizeof fuzz_base - 1, &err) != 0)
		abort();
	if (bio_config_load_overlay(c, "fuzz", text, size, &err) == 0) {
		exercise(c);
		round_trip(c, fuzz_base);
	}
	/* the first line as --set */
	size_t line = 0;
	while (line < size && line < 4096 && data[line] != '\n')
		line++;
	char *set = malloc(line + 1);
	if (!set)
		abort();
	memcpy(set, data, line);
	set[line] = '\0';
	if (bio_config_set(c, set, &err) == 0) {
		exercise(c);
		round_trip(c, fuzz_base);
	}
	free(set);
	bio_config_free(c);

	c = bio_config_new();
	if (!c)
		abort();
	if (bio_config_load_base(c, "fuzz", text, size, &err) == 0) {
		exercise(c);
		round_trip(c, NULL);
	}
	bio_config_free(c);
	return 0;
}
