/* Unit tests of the layered configuration (lib/config.c) and SHA-256 (lib/sha256.c): layering
 * order, unknown keys and their suggestions, origins in messages, strict typed getters, open
 * maps, --set parsing, the limits (alias bomb, depth, size), duplicate keys and other refused
 * YAML, dump round trips, digest stability, and SHA-256 against FIPS vectors and Python. */
#include "bio/config.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static const char base_text[] =
	"# test base\n"
	"experiment:\n"
	"  name: default\n"
	"  seed: 42\n"
	"training:\n"
	"  lr: 0.001\n"
	"  epochs: 10\n"
	"  nesterov: false\n"
	"  optimizer: adam\n"
	"  early_stopping:\n"
	"    metric: val_accuracy\n"
	"    patience: 0\n"
	"model:\n"
	"  channels: [32, 64, 128]\n"
	"  modalities: [iris, fingerprint]\n"
	"tracking:\n"
	"  run_name: \"\"\n"
	"  tags: {}\n"
	"empty:\n";

static struct bio_config *base(void)
{
	struct bio_config *c = bio_config_new();
	struct bio_error err = {0};
	int rc = bio_config_load_base(c, "base.yaml", base_text, sizeof base_text - 1, &err);
	if (rc != 0)
		fprintf(stderr, "base: %s\n", err.msg);
	BIO_ASSERT(rc == 0);
	return c;
}

static int overlay(struct bio_config *c, const char *name, const char *text,
		   struct bio_error *err)
{
	return bio_config_load_overlay(c, name, text, strlen(text), err);
}

static char *dump_string(const struct bio_config *c)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);
	BIO_ASSERT(f);
	struct bio_error err = {0};
	int rc = bio_config_dump(c, f, &err);
	fclose(f);
	BIO_ASSERT(rc == 0);
	return p;
}

TEST(base_values)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	int64_t i;
	double d;
	int b;
	const char *s;
	CHECK_EQ(bio_config_get_int(c, "experiment.seed", &i, &err), 0);
	CHECK_EQ(i, 42);
	CHECK_EQ(bio_config_get_double(c, "training.lr", &d, &err), 0);
	CHECK_NEAR(d, 0.001, 1e-15);
	CHECK_EQ(bio_config_get_bool(c, "training.nesterov", &b, &err), 0);
	CHECK_EQ(b, 0);
	CHECK_EQ(bio_config_get_str(c, "training.optimizer", &s, &err), 0);
	CHECK_STR(s, "adam");
	CHECK_EQ(bio_config_get_str(c, "tracking.run_name", &s, &err), 0);
	CHECK_STR(s, ""); /* quoted empty string: a string, not null */
	/* no getter takes a default: an absent key is an error naming it (base.yaml defines
	 * every key the programs read) */
	CHECK_EQ(bio_config_get_int(c, "training.nosuch", &i, &err), BIO_ENOTFOUND);
	CHECK(strstr(err.msg, "training.nosuch: not in the configuration") == err.msg);
	CHECK_EQ(bio_config_get_str(c, "nosuch.deeper.key", &s, &err), BIO_ENOTFOUND);
	CHECK_EQ(bio_config_get_bool(c, "nosuch", &b, &err), BIO_ENOTFOUND);
	CHECK_EQ(bio_config_get_double_range(c, "nosuch", 0, 1, &d, &err), BIO_ENOTFOUND);
	/* a null value: an error for a typed key, "" for a string */
	CHECK_EQ(bio_config_get_int(c, "empty", &i, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "empty: expected an integer, got an empty value") != NULL);
	CHECK_EQ(bio_config_get_str(c, "empty", &s, &err), 0);
	CHECK_STR(s, "");
	CHECK(bio_config_has(c, "empty"));
	CHECK(bio_config_has(c, "training.early_stopping"));
	CHECK(!bio_config_has(c, "training.early"));
	CHECK_STR(bio_config_origin(c, "training.lr"), "base.yaml:6");
	CHECK_STR(bio_config_origin(c, "training.early_stopping.patience"), "base.yaml:12");
	CHECK_STR(bio_config_origin(c, "nosuch"), "");
	CHECK_EQ(bio_config_count(c, "model.channels"), 3);
	CHECK_EQ(bio_config_count(c, "training"), 5);
	CHECK_EQ(bio_config_count(c, "training.lr"), 0);
	CHECK_EQ(bio_config_count(c, "nosuch"), 0);
	CHECK_STR(bio_config_key_at(c, "training", 1), "epochs");
	CHECK(bio_config_key_at(c, "training", 5) == NULL);
	CHECK(bio_config_key_at(c, "model.channels", 0) == NULL);
	CHECK_STR(bio_config_item_at(c, "model.channels", 2), "128");
	CHECK(bio_config_item_at(c, "model.channels", 3) == NULL);
	CHECK(bio_config_item_at(c, "training", 0) == NULL);
	bio_config_free(c);
}

TEST(layering_order)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	int64_t i;
	CHECK_EQ(overlay(c, "env.yaml", "training:\n  epochs: 20\n  lr: 0.1\n", &err), 0);
	CHECK_EQ(overlay(c, "user.yaml", "training: {epochs: 30}\n", &err), 0);
	CHECK_EQ(bio_config_get_int(c, "training.epochs", &i, &err), 0);
	CHECK_EQ(i, 30);
	CHECK_STR(bio_config_origin(c, "training.epochs"), "user.yaml:1");
	CHECK_STR(bio_config_origin(c, "training.lr"), "env.yaml:3");
	CHECK_EQ(bio_config_set(c, "training.epochs=40", &err), 0);
	CHECK_EQ(bio_config_get_int(c, "training.epochs", &i, &err), 0);
	CHECK_EQ(i, 40);
	CHECK_STR(bio_config_origin(c, "training.epochs"), "--set");
	/* keys not touched keep their base values and origins */
	CHECK_STR(bio_config_origin(c, "experiment.seed"), "base.yaml:4");
	/* sequences are replaced whole */
	CHECK_EQ(overlay(c, "o.yaml", "model:\n  channels: [8]\n", &err), 0);
	CHECK_EQ(bio_config_count(c, "model.channels"), 1);
	CHECK_STR(bio_config_item_at(c, "model.channels", 0), "8");
	/* an empty overlay changes nothing */
	CHECK_EQ(overlay(c, "e.yaml", "", &err), 0);
	CHECK_EQ(overlay(c, "e.yaml", "# only a comment\n", &err), 0);
	CHECK_EQ(overlay(c, "e.yaml", "---\n", &err), 0);
	CHECK_EQ(bio_config_get_int(c, "training.epochs", &i, &err), 0);
	CHECK_EQ(i, 40);
	bio_config_free(c);
}

TEST(unknown_keys)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	CHECK_EQ(overlay(c, "x.yaml", "training:\n  epochs: 3\n  lrr: 0.1\n", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg, "x.yaml:3: training.lrr: unknown key (did you mean 'training.lr'?)");
	/* a failed overlay changes nothing, not even the keys before the bad one */
	int64_t i;
	CHECK_EQ(bio_config_get_int(c, "training.epochs", &i, &err), 0);
	CHECK_EQ(i, 10);
	CHECK_EQ(overlay(c, "x.yaml", "trainig:\n  lr: 1\n", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg, "x.yaml:1: trainig: unknown key (did you mean 'training'?)");
	CHECK_EQ(overlay(c, "x.yaml", "a: 1\nlr: 1\n", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg, "x.yaml:1: a: unknown key");
	/* a key known elsewhere is suggested by its full path */
	CHECK_EQ(overlay(c, "x.yaml", "patience: 1\n", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg,
		  "x.yaml:1: patience: unknown key (did you mean 'training.early_stopping.patience'?)");
	CHECK_EQ(overlay(c, "x.yaml", "training:\n  zzzzzz: 1\n", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg, "x.yaml:2: training.zzzzzz: unknown key");
	CHECK_EQ(bio_config_set(c, "training.early_stoping.patience=3", &err), BIO_ENOTFOUND);
	CHECK_STR(err.msg, "--set: training.early_stoping: unknown key "
			   "(did you mean 'training.early_stopping'?)");
	bio_config_free(c);
}

TEST(type_errors)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	double d;
	int64_t i;
	int b;
	const char *s;
	CHECK_EQ(overlay(c, "configs/x.yaml", "\n\ntraining:\n  lr: fast\n  epochs: 12abc\n"
						  "  nesterov: maybe\n", &err), 0);
	CHECK_EQ(bio_config_get_double(c, "training.lr", &d, &err), BIO_EINVAL);
	CHECK_STR(err.msg, "configs/x.yaml:4: training.lr: expected a number, got 'fast'");
	CHECK_EQ(bio_config_get_int(c, "training.epochs", &i, &err), BIO_EINVAL);
	CHECK_STR(err.msg, "configs/x.yaml:5: training.epochs: expected an integer, got '12abc'");
	CHECK_EQ(bio_config_get_bool(c, "training.nesterov", &b, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "configs/x.yaml:6: training.nesterov: expected a boolean") == err.msg);
	CHECK(strstr(err.msg, "got 'maybe'"));
	CHECK_EQ(bio_config_get_int(c, "training", &i, &err), BIO_EINVAL);
	CHECK_STR(err.msg, "base.yaml:5: training: expected an integer, got a map");
	CHECK_EQ(bio_config_get_str(c, "model.channels", &s, &err), BIO_EINVAL);
	CHECK_STR(err.msg, "base.yaml:14: model.channels: expected a string, got a sequence");
	/* map vs scalar vs sequence changes are refused, naming both places */
	CHECK_EQ(overlay(c, "y.yaml", "training: 3\n", &err), BIO_EINVAL);
	CHECK_STR(err.msg, "y.yaml:1: training: expected a map (as in base.yaml:5), got a scalar");
	CHECK_EQ(overlay(c, "y.yaml", "model:\n  channels: 32\n", &err), BIO_EINVAL);
	CHECK_STR(err.msg,
		  "y.yaml:2: model.channels: expected a sequence (as in base.yaml:14), got a scalar");
	CHECK_EQ(overlay(c, "y.yaml", "experiment:\n  seed: [1]\n", &err), BIO_EINVAL);
	CHECK_EQ(bio_config_set(c, "model.channels=4", &err), BIO_EINVAL);
	CHECK_STR(err.msg,
		  "--set: model.channels: expected a sequence (as in base.yaml:14), got a scalar");
	/* a range error names the origin */
	CHECK_EQ(bio_config_get_int_range(c, "experiment.seed", 0, 10, &i, &err), BIO_EINVAL);
	CHECK_STR(err.msg, "base.yaml:4: experiment.seed: 42 is out of range [0, 10]");
	CHECK_EQ(bio_config_get_double_range(c, "nosuch", 0, 1, &d, &err), BIO_ENOTFOUND);
	CHECK_EQ(bio_config_get_double_range(c, "training.lr", 0.5, 1, &d, &err), BIO_EINVAL);
	CHECK_EQ(bio_config_error(c, "training.lr", &err, BIO_EINVAL, "too %s", "big"), BIO_EINVAL);
	CHECK_STR(err.msg, "configs/x.yaml:4: training.lr: too big");
	CHECK_EQ(bio_config_error(c, "nosuch.x", &err, BIO_EINVAL, "missing"), BIO_EINVAL);
	CHECK_STR(err.msg, "nosuch.x: missing");
	bio_config_free(c);
}

static int get_int_text(const char *v, int64_t *out)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	char set[256];
	snprintf(set, sizeof set, "experiment.seed=%s", v);
	int rc = bio_config_set(c, set, &err);
	if (rc == 0)
		rc = bio_config_get_int(c, "experiment.seed", out, &err);
	bio_config_free(c);
	return rc;
}

static int get_double_text(const char *v, double *out)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	char set[256];
	snprintf(set, sizeof set, "training.lr=%s", v);
	int rc = bio_config_set(c, set, &err);
	if (rc == 0)
		rc = bio_config_get_double(c, "training.lr", out, &err);
	bio_config_free(c);
	return rc;
}

static int get_bool_text(const char *v, int *out)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	char set[256];
	snprintf(set, sizeof set, "training.nesterov=%s", v);
	int rc = bio_config_set(c, set, &err);
	if (rc == 0)
		rc = bio_config_get_bool(c, "training.nesterov", out, &err);
	bio_config_free(c);
	return rc;
}

TEST(strict_scalars)
{
	int64_t i = 0;
	CHECK_EQ(get_int_text("12", &i), 0);
	CHECK_EQ(i, 12);
	CHECK_EQ(get_int_text("-7", &i), 0);
	CHECK_EQ(i, -7);
	CHECK_EQ(get_int_text("+7", &i), 0);
	CHECK_EQ(i, 7);
	CHECK_EQ(get_int_text("9223372036854775807", &i), 0);
	CHECK(i == INT64_MAX);
	CHECK_EQ(get_int_text("-9223372036854775808", &i), 0);
	CHECK(i == INT64_MIN);
	CHECK_EQ(get_int_text("9223372036854775808", &i), BIO_EINVAL);
	CHECK_EQ(get_int_text("12abc", &i), BIO_EINVAL);
	CHECK_EQ(get_int_text("1.5", &i), BIO_EINVAL);
	CHECK_EQ(get_int_text("1e3", &i), BIO_EINVAL);
	CHECK_EQ(get_int_text("0x10", &i), BIO_EINVAL);
	CHECK_EQ(get_int_text("-", &i), BIO_EINVAL);
	CHECK_EQ(get_int_text("' 12'", &i), BIO_EINVAL);
	CHECK_EQ(get_int_text("'12'", &i), 0); /* a quoted number still reads as that number */
	CHECK_EQ(i, 12);

	double d = 0;
	CHECK_EQ(get_double_text("1e-3", &d), 0);
	CHECK_NEAR(d, 0.001, 1e-18);
	CHECK_EQ(get_double_text("0.001", &d), 0);
	CHECK_NEAR(d, 0.001, 1e-18);
	CHECK_EQ(get_double_text(".5", &d), 0);
	CHECK_NEAR(d, 0.5, 0);
	CHECK_EQ(get_double_text("5.", &d), 0);
	CHECK_NEAR(d, 5, 0);
	CHECK_EQ(get_double_text("-2E+2", &d), 0);
	CHECK_NEAR(d, -200, 0);
	CHECK_EQ(get_double_text("3", &d), 0);
	CHECK_NEAR(d, 3, 0);
	CHECK_EQ(get_double_text("nan", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text("inf", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text(".inf", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text("-.inf", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text("1e999", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text("0x1p3", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text("1e", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text(".", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text("1.0.0", &d), BIO_EINVAL);
	CHECK_EQ(get_double_text("fast", &d), BIO_EINVAL);

	int b = -1;
	const char *yes[] = {"true", "True", "TRUE", "yes", "on", "On"};
	const char *no[] = {"false", "False", "no", "NO", "off"};
	for (size_t k = 0; k < sizeof yes / sizeof *yes; k++) {
		b = -1;
		CHECK_EQ(get_bool_text(yes[k], &b), 0);
		CHECK_EQ(b, 1);
	}
	for (size_t k = 0; k < sizeof no / sizeof *no; k++) {
		b = -1;
		CHECK_EQ(get_bool_text(no[k], &b), 0);
		CHECK_EQ(b, 0);
	}
	CHECK_EQ(get_bool_text("1", &b), BIO_EINVAL);
	CHECK_EQ(get_bool_text("y", &b), BIO_EINVAL);
	CHECK_EQ(get_bool_text("truee", &b), BIO_EINVAL);
}

TEST(open_maps)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	const char *s;
	int64_t i;
	CHECK_EQ(overlay(c, "t.yaml", "tracking:\n  tags:\n    owner: ann\n    deep: {a: 1, b: [x]}\n",
			 &err), 0);
	CHECK_EQ(bio_config_count(c, "tracking.tags"), 2);
	CHECK_EQ(bio_config_get_str(c, "tracking.tags.owner", &s, &err), 0);
	CHECK_STR(s, "ann");
	CHECK_EQ(bio_config_get_int(c, "tracking.tags.deep.a", &i, &err), 0);
	CHECK_EQ(i, 1);
	/* below an open map anything goes: new keys, and type changes */
	CHECK_EQ(overlay(c, "u.yaml", "tracking:\n  tags:\n    deep:\n      c: 3\n      b: flat\n",
			 &err), 0);
	CHECK_EQ(bio_config_count(c, "tracking.tags.deep"), 3);
	CHECK_EQ(bio_config_get_str(c, "tracking.tags.deep.b", &s, &err), 0);
	CHECK_STR(s, "flat");
	CHECK_EQ(bio_config_set(c, "tracking.tags.deep=7", &err), 0);
	CHECK_EQ(bio_config_get_int(c, "tracking.tags.deep", &i, &err), 0);
	CHECK_EQ(i, 7);
	CHECK_EQ(bio_config_set(c, "tracking.tags.new.x.y=1", &err), 0);
	CHECK_EQ(bio_config_get_int(c, "tracking.tags.new.x.y", &i, &err), 0);
	CHECK_EQ(i, 1);
	/* but the map beside it stays closed */
	CHECK_EQ(bio_config_set(c, "tracking.other=1", &err), BIO_ENOTFOUND);
	bio_config_free(c);
}

TEST(set_parsing)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	const char *s;
	double d;
	CHECK_EQ(bio_config_set(c, "model.channels=[1, 2,3]", &err), 0);
	CHECK_EQ(bio_config_count(c, "model.channels"), 3);
	CHECK_STR(bio_config_item_at(c, "model.channels", 2), "3");
	CHECK_EQ(bio_config_set(c, "model.modalities=[]", &err), 0);
	CHECK_EQ(bio_config_count(c, "model.modalities"), 0);
	CHECK_EQ(bio_config_set(c, "training.optimizer='a b'", &err), 0);
	CHECK_EQ(bio_config_get_str(c, "training.optimizer", &s, &err), 0);
	CHECK_STR(s, "a b");
	CHECK_EQ(bio_config_set(c, "training.optimizer=\"x\\ty\"", &err), 0);
	CHECK_EQ(bio_config_get_str(c, "training.optimizer", &s, &err), 0);
	CHECK_STR(s, "x\ty");
	/* anything else is taken literally, YAML indicators included */
	CHECK_EQ(bio_config_set(c, "training.optimizer=a: b # c", &err), 0);
	CHECK_EQ(bio_config_get_str(c, "training.optimizer", &s, &err), 0);
	CHECK_STR(s, "a: b # c");
	CHECK_EQ(bio_config_set(c, "training.optimizer=*alias", &err), 0);
	CHECK_EQ(bio_config_get_str(c, "training.optimizer", &s, &err), 0);
	CHECK_STR(s, "*alias");
	CHECK_EQ(bio_config_set(c, "training.optimizer=x=y", &err), 0); /* split at the first = */
	CHECK_EQ(bio_config_get_str(c, "training.optimizer", &s, &err), 0);
	CHECK_STR(s, "x=y");
	CHECK_EQ(bio_config_set(c, "training.lr=1e-4", &err), 0);
	CHECK_EQ(bio_config_get_double(c, "training.lr", &d, &err), 0);
	CHECK_NEAR(d, 1e-4, 1e-19);
	/* malformed assignments */
	CHECK_EQ(bio_config_set(c, "training.lr", &err), BIO_EINVAL);
	CHECK_STR(err.msg, "--set: 'training.lr': expected KEY=VALUE");
	CHECK_EQ(bio_config_set(c, "=3", &err), BIO_EINVAL);
	CHECK_STR(err.msg, "--set: '=3': empty key");
	CHECK_EQ(bio_config_set(c, "training..lr=3", &err), BIO_EINVAL);
	CHECK_STR(err.msg, "--set: 'training..lr': malformed key");
	CHECK_EQ(bio_config_set(c, ".lr=3", &err), BIO_EINVAL);
	CHECK_EQ(bio_config_set(c, "training.=3", &err), BIO_EINVAL);
	CHECK_EQ(bio_config_set(c, "model.channels=[1, 2", &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "--set: model.channels: ") == err.msg);
	CHECK_EQ(bio_config_set(c, "model.channels=[1]\nx: 2", &err), BIO_EINVAL);
	CHECK_EQ(bio_config_set(c, "training.optimizer=\xff\xfe", &err), BIO_EINVAL);
	CHECK_EQ(bio_config_set(c, "training.optimizer=\xed\xa0\x80", &err), BIO_EINVAL);
	/* a failed --set changes nothing */
	CHECK_EQ(bio_config_count(c, "model.channels"), 3);
	/* empty value: null: "" for a string, an error naming the --set for a typed key */
	CHECK_EQ(bio_config_set(c, "training.optimizer=", &err), 0);
	CHECK_EQ(bio_config_get_str(c, "training.optimizer", &s, &err), 0);
	CHECK_STR(s, "");
	CHECK_EQ(bio_config_set(c, "training.lr=", &err), 0);
	double lr;
	CHECK_EQ(bio_config_get_double(c, "training.lr", &lr, &err), BIO_EINVAL);
	CHECK_STR(err.msg, "--set: training.lr: expected a number, got an empty value");
	bio_config_free(c);
}

TEST(refused_yaml)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	CHECK_EQ(overlay(c, "d.yaml", "training:\n  lr: 1\n  epochs: 2\n  lr: 3\n", &err),
		 BIO_EFORMAT);
	CHECK_STR(err.msg, "d.yaml:4: training.lr: duplicate key (first at d.yaml:2)");
	CHECK_EQ(overlay(c, "d.yaml", "a: 1\na: 1\n", &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "d.yaml:2: a: duplicate key (first at d.yaml:1)");
	CHECK_EQ(overlay(c, "m.yaml", "training: {lr: 1}\n---\ntraining: {lr: 2}\n", &err),
		 BIO_EFORMAT);
	CHECK_STR(err.msg, "m.yaml:2: more than one YAML document (only one is allowed)");
	CHECK_EQ(overlay(c, "k.yaml", "? [a, b]\n: 1\n", &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "keys must be plain strings"));
	CHECK_EQ(overlay(c, "k.yaml", "training: {a.b: 1}\n", &err), BIO_EFORMAT);
	CHECK_EQ(overlay(c, "k.yaml", "\"\": 1\n", &err), BIO_EFORMAT);
	CHECK_EQ(overlay(c, "s.yaml", "- a\n- b\n", &err), BIO_EFORMAT);
	CHECK_STR(err.msg, "s.yaml:1: the top level must be a map, not a sequence");
	CHECK_EQ(overlay(c, "s.yaml", "hello\n", &err), BIO_EFORMAT);
	CHECK_EQ(overlay(c, "t.yaml", "training:\n\tlr: 1\n", &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "t.yaml:2: tab character"));
	CHECK_EQ(overlay(c, "y.yaml", "training: [1, 2\n", &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "y.yaml:") == err.msg && strstr(err.msg, "YAML syntax error"));
	CHECK_EQ(overlay(c, "g.yaml", "training: !!python/object:os.system x\n", &err),
		 BIO_EUNSUPPORTED);
	CHECK_EQ(overlay(c, "g.yaml", "training:\n  lr: !!float 0.5\n", &err), 0);
	CHECK_EQ(overlay(c, "u.yaml", "training: *nope\n", &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "unknown anchor"));
	CHECK_EQ(overlay(c, "n.yaml", "training: {optimizer: \"a\\0b\"}\n", &err), BIO_EFORMAT);
	CHECK_EQ(overlay(c, "b.yaml", "training: {optimizer: \xff\xfe}\n", &err), BIO_EFORMAT);
	CHECK_EQ(overlay(c, "b.yaml", "<<: {a: 1}\n", &err), BIO_EUNSUPPORTED);
	/* anchors and aliases within the limits work */
	CHECK_EQ(overlay(c, "a.yaml", "experiment: {seed: &s 9}\ntraining: {epochs: *s}\n", &err),
		 0);
	int64_t i;
	CHECK_EQ(bio_config_get_int(c, "training.epochs", &i, &err), 0);
	CHECK_EQ(i, 9);
	CHECK_STR(bio_config_origin(c, "training.epochs"), "a.yaml:2");
	bio_config_free(c);

	/* loading a base twice, or an overlay without a base, is refused */
	c = base();
	CHECK_EQ(bio_config_load_base(c, "b2", "a: 1\n", 5, &err), BIO_EINVAL);
	bio_config_free(c);
	c = bio_config_new();
	CHECK_EQ(overlay(c, "o", "a: 1\n", &err), BIO_EINVAL);
	CHECK_EQ(bio_config_set(c, "a=1", &err), BIO_EINVAL);
	CHECK(!bio_config_has(c, "a"));
	bio_config_free(c);
}

TEST(alias_bomb)
{
	/* Billion laughs: 10 levels of 10 aliases each would be 10^10 nodes. */
	char text[4096];
	size_t len = (size_t)snprintf(text, sizeof text, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int k = 1; k < 10; k++) {
		len += (size_t)snprintf(text + len, sizeof text - len, "a%d: &a%d [", k, k);
		for (int j = 0; j < 10; j++)
			len += (size_t)snprintf(text + len, sizeof text - len, "%s*a%d", j ? ", " : "",
						k - 1);
		len += (size_t)snprintf(text + len, sizeof text - len, "]\n");
	}
	BIO_ASSERT(len < sizeof text);
	struct bio_config *c = bio_config_new();
	struct bio_error err = {0};
	CHECK_EQ(bio_config_load_base(c, "bomb.yaml", text, len, &err), BIO_ELIMIT);
	CHECK(strstr(err.msg, "bomb.yaml:"));
	CHECK(strstr(err.msg, "alias bomb"));
	bio_config_free(c);
	/* as an overlay, under an open map */
	c = bio_config_new();
	CHECK_EQ(bio_config_load_base(c, "b", "tags: {}\n", 9, &err), 0);
	char *ov = malloc(len + 64);
	BIO_ASSERT(ov);
	int n = snprintf(ov, len + 64, "tags:\n");
	for (size_t k = 0; k < len; k++) {
		if (k == 0 || text[k - 1] == '\n')
			ov[n++] = ' ', ov[n++] = ' ';
		ov[n++] = text[k];
	}
	CHECK_EQ(bio_config_load_overlay(c, "bomb.yaml", ov, (size_t)n, &err), BIO_ELIMIT);
	CHECK_EQ(bio_config_count(c, "tags"), 0);
	free(ov);
	bio_config_free(c);
	/* a wide but legal document just under the limit loads */
	size_t n_items = BIO_CONFIG_MAX_NODES - 10;
	char *wide = malloc(16 + 3 * n_items);
	BIO_ASSERT(wide);
	size_t w = (size_t)sprintf(wide, "list: [");
	for (size_t k = 0; k < n_items; k++)
		w += (size_t)sprintf(wide + w, "%s1", k ? "," : "");
	w += (size_t)sprintf(wide + w, "]\n");
	c = bio_config_new();
	CHECK_EQ(bio_config_load_base(c, "wide", wide, w, &err), 0);
	CHECK_EQ(bio_config_count(c, "list"), n_items);
	bio_config_free(c);
	free(wide);
}

TEST(depth_and_size)
{
	struct bio_error err = {0};
	struct bio_config *c;
	/* nesting at the limit loads; one deeper fails */
	for (int depth = BIO_CONFIG_MAX_DEPTH; depth <= BIO_CONFIG_MAX_DEPTH + 1; depth++) {
		char text[512];
		size_t len = 0;
		for (int k = 0; k < depth; k++)
			len += (size_t)sprintf(text + len, "{k%d: ", k);
		len += (size_t)sprintf(text + len, "1");
		for (int k = 0; k < depth; k++)
			text[len++] = '}';
		text[len++] = '\n';
		c = bio_config_new();
		int rc = bio_config_load_base(c, "deep.yaml", text, len, &err);
		CHECK_EQ(rc, depth <= BIO_CONFIG_MAX_DEPTH ? 0 : BIO_ELIMIT);
		bio_config_free(c);
	}
	CHECK(strstr(err.msg, "nesting deeper than"));
	/* a million brackets fail at the limit, not by exhausting the stack */
	size_t n = 1000000;
	char *deep = malloc(n + 1);
	BIO_ASSERT(deep);
	memset(deep, '[', n);
	deep[n] = '\0';
	c = bio_config_new();
	CHECK_EQ(bio_config_load_base(c, "deep.yaml", deep, n, &err), BIO_ELIMIT);
	bio_config_free(c);
	free(deep);
	/* an alias that would nest too deep */
	c = bio_config_new();
	char text[1024];
	size_t len = (size_t)sprintf(text, "a: &x ");
	for (int k = 0; k < 20; k++)
		len += (size_t)sprintf(text + len, "[");
	for (int k = 0; k < 20; k++)
		text[len++] = ']';
	len += (size_t)sprintf(text + len, "\nb: ");
	for (int k = 0; k < 20; k++)
		len += (size_t)sprintf(text + len, "[");
	len += (size_t)sprintf(text + len, "*x");
	for (int k = 0; k < 20; k++)
		text[len++] = ']';
	text[len++] = '\n';
	CHECK_EQ(bio_config_load_base(c, "deep.yaml", text, len, &err), BIO_ELIMIT);
	bio_config_free(c);
	/* size limit */
	size_t big = BIO_CONFIG_MAX_BYTES + 1;
	char *huge = malloc(big);
	BIO_ASSERT(huge);
	memset(huge, '#', big);
	c = bio_config_new();
	CHECK_EQ(bio_config_load_base(c, "huge.yaml", huge, big, &err), BIO_ELIMIT);
	CHECK(strstr(err.msg, "huge.yaml: larger than"));
	/* the same through a file */
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	BIO_ASSERT(fd >= 0);
	BIO_ASSERT(write(fd, huge, big) == (ssize_t)big);
	close(fd);
	bio_config_free(c);
	c = base();
	CHECK_EQ(bio_config_load_file(c, path, &err), BIO_ELIMIT);
	unlink(path);
	CHECK_EQ(bio_config_load_file(c, path, &err), BIO_ENOTFOUND);
	CHECK(strstr(err.msg, path) == err.msg && strstr(err.msg, "No such file"));
	bio_config_free(c);
	free(huge);
}

TEST(load_file)
{
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	BIO_ASSERT(fd >= 0);
	const char text[] = "training:\n  lr: 0.5\n  optimizer: sgd\n";
	BIO_ASSERT(write(fd, text, sizeof text - 1) == (ssize_t)sizeof text - 1);
	close(fd);
	struct bio_config *c = base();
	struct bio_error err = {0};
	CHECK_EQ(bio_config_load_file(c, path, &err), 0);
	double d;
	CHECK_EQ(bio_config_get_double(c, "training.lr", &d, &err), 0);
	CHECK_NEAR(d, 0.5, 0);
	char want[64];
	snprintf(want, sizeof want, "%s:3", path);
	CHECK_STR(bio_config_origin(c, "training.optimizer"), want);
	unlink(path);
	bio_config_free(c);
}

TEST(dump_round_trip)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	/* values that need quoting or escaping, set in several ways */
	CHECK_EQ(bio_config_set(c, "training.optimizer=a: b # c", &err), 0);
	CHECK_EQ(bio_config_set(c, "experiment.name= lead and trail ", &err), 0);
	CHECK_EQ(bio_config_set(c, "tracking.run_name=\"tab\\there\\nnl \\\" q \\\\ \\u2028 \\x85 "
					"\\x7f \\ufeff\"", &err), 0);
	CHECK_EQ(bio_config_set(c, "model.modalities=[\"a, b\", '[x]', ~, '~', true, 'true', "
					"-1, '', {k: v}, [1, [2]]]", &err), 0);
	CHECK_EQ(bio_config_set(c, "tracking.tags.'weird key'=x", &err), BIO_EINVAL);
	CHECK_EQ(overlay(c, "o.yaml", "tracking:\n  tags:\n    \"-\": dash\n    '#': hash\n"
					"    \"café\": 'crème'\n    list: [a]\n    empty: {}\n"
					"    multi: |\n      line1\n      line2\n",
			 &err), 0);
	CHECK_EQ(bio_config_set(c, "experiment.seed=---", &err), 0);
	CHECK_EQ(bio_config_set(c, "training.early_stopping.metric=@x", &err), 0);
	char *d1 = dump_string(c);
	struct bio_config *c2 = base();
	int rc = overlay(c2, "dump.yaml", d1, &err);
	CHECK_EQ(rc, 0);
	if (rc != 0)
		fprintf(stderr, "reload: %s\n--- dump:\n%s", err.msg, d1);
	char *d2 = dump_string(c2);
	CHECK_STR(d1, d2);
	/* same values through the getters */
	const char *s1, *s2;
	CHECK_EQ(bio_config_get_str(c2, "tracking.run_name", &s2, &err), 0);
	CHECK_EQ(bio_config_get_str(c, "tracking.run_name", &s1, &err), 0);
	CHECK_STR(s1, s2);
	CHECK_EQ(bio_config_get_str(c2, "experiment.name", &s2, &err), 0);
	CHECK_STR(s2, " lead and trail ");
	CHECK_EQ(bio_config_get_str(c2, "tracking.tags.multi", &s2, &err), 0);
	CHECK_STR(s2, "line1\nline2\n");
	CHECK_EQ(bio_config_count(c2, "model.modalities"), 10);
	CHECK_STR(bio_config_item_at(c2, "model.modalities", 0), "a, b");
	char h1[65], h2[65];
	CHECK_EQ(bio_config_digest(c, NULL, 0, h1, &err), 0);
	CHECK_EQ(bio_config_digest(c2, NULL, 0, h2, &err), 0);
	CHECK_STR(h1, h2);
	/* the dump lists keys in base order */
	CHECK(strstr(d1, "experiment:") < strstr(d1, "training:"));
	CHECK(strstr(d1, "training:") < strstr(d1, "model:"));
	CHECK(strstr(d1, "  lr: 0.001\n  epochs: 10\n"));
	CHECK(strstr(d1, "  channels: [32, 64, 128]\n"));
	CHECK(strstr(d1, "  run_name: \"tab\\there\\nnl"));
	free(d1);
	free(d2);
	bio_config_free(c);
	bio_config_free(c2);

	/* the plain base dumps to itself after a round trip too */
	c = base();
	d1 = dump_string(c);
	c2 = base();
	CHECK_EQ(overlay(c2, "dump.yaml", d1, &err), 0);
	d2 = dump_string(c2);
	CHECK_STR(d1, d2);
	CHECK_STR(d1, "experiment:\n  name: default\n  seed: 42\ntraining:\n  lr: 0.001\n"
		      "  epochs: 10\n  nesterov: false\n  optimizer: adam\n  early_stopping:\n"
		      "    metric: val_accuracy\n    patience: 0\nmodel:\n  channels: [32, 64, 128]\n"
		      "  modalities: [iris, fingerprint]\ntracking:\n  run_name: \"\"\n  tags: {}\n"
		      "empty: ~\n");
	free(d1);
	free(d2);
	bio_config_free(c);
	bio_config_free(c2);
}

/* Large maps load and merge in O(n log n): a quadratic duplicate check or merge would take
 * minutes here (and the test suite's time limit catches that). */
TEST(large_maps)
{
	enum { N = 40000 };
	struct bio_error err = {0};
	char *text = malloc((size_t)N * 24 + 16);
	BIO_ASSERT(text);
	struct bio_config *c = bio_config_new();
	CHECK_EQ(bio_config_load_base(c, "b", "tags: {}\n", 9, &err), 0);
	for (int pass = 0; pass < 2; pass++) {
		size_t len = (size_t)sprintf(text, "tags:\n");
		for (int i = 0; i < N; i++)
			len += (size_t)sprintf(text + len, "  k%d: %d\n", (i * 7919) % N, pass);
		CHECK_EQ(bio_config_load_overlay(c, "big", text, len, &err), 0);
	}
	CHECK_EQ(bio_config_count(c, "tags"), N);
	int64_t v;
	CHECK_EQ(bio_config_get_int(c, "tags.k123", &v, &err), 0);
	CHECK_EQ(v, 1);
	/* a duplicate among many keys is still found */
	size_t len = (size_t)sprintf(text, "tags:\n");
	for (int i = 0; i < N; i++)
		len += (size_t)sprintf(text + len, "  k%d: 1\n", i == N - 1 ? 17 : i);
	CHECK_EQ(bio_config_load_overlay(c, "dup", text, len, &err), BIO_EFORMAT);
	CHECK(strstr(err.msg, "tags.k17: duplicate key (first at dup:19)"));
	bio_config_free(c);
	free(text);
}

struct leaves {
	char buf[4096];
	size_t len;
	int n;
};

static int collect(void *ud, const char *path, const char *value)
{
	struct leaves *l = ud;
	l->len += (size_t)snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s=%s\n", path, value);
	return ++l->n == 1000 ? 99 : 0;
}

static int stop_at_third(void *ud, const char *path, const char *value)
{
	(void)path;
	(void)value;
	return ++*(int *)ud == 3 ? 42 : 0;
}

TEST(foreach_leaf)
{
	struct bio_config *c = base();
	struct bio_error err = {0};
	CHECK_EQ(overlay(c, "o.yaml", "tracking: {tags: {a: {b: 'x y'}}}\n", &err), 0);
	struct leaves l = {{0}, 0, 0};
	CHECK_EQ(bio_config_foreach_leaf(c, collect, &l), 0);
	CHECK_STR(l.buf, "experiment.name=default\nexperiment.seed=42\ntraining.lr=0.001\n"
			 "training.epochs=10\ntraining.nesterov=false\ntraining.optimizer=adam\n"
			 "training.early_stopping.metric=val_accuracy\n"
			 "training.early_stopping.patience=0\nmodel.channels=[32, 64, 128]\n"
			 "model.modalities=[iris, fingerprint]\ntracking.run_name=\n"
			 "tracking.tags.a.b=x y\nempty=\n");
	int n = 0;
	CHECK_EQ(bio_config_foreach_leaf(c, stop_at_third, &n), 42);
	CHECK_EQ(n, 3);
	bio_config_free(c);
}

TEST(digest)
{
	struct bio_error err = {0};
	const char a[] = "x:\n  p: 1\n  q: [1, 2]\ny:\n  r: s\n  t: {}\n";
	const char b[] = "y:\n  t: {}\n  r: s\nx: {q: [1, 2], p: 1}\n";
	struct bio_config *ca = bio_config_new(), *cb = bio_config_new();
	CHECK_EQ(bio_config_load_base(ca, "a", a, sizeof a - 1, &err), 0);
	CHECK_EQ(bio_config_load_base(cb, "b", b, sizeof b - 1, &err), 0);
	char ha[65], hb[65], hx[65], hy[65];
	CHECK_EQ(bio_config_digest(ca, NULL, 0, ha, &err), 0);
	CHECK_EQ(bio_config_digest(cb, NULL, 0, hb, &err), 0);
	CHECK_STR(ha, hb);
	CHECK_EQ(strlen(ha), 64);
	/* an open map filled in different orders */
	CHECK_EQ(bio_config_set(ca, "y.t.k1=1", &err), 0);
	CHECK_EQ(bio_config_set(ca, "y.t.k2=2", &err), 0);
	CHECK_EQ(bio_config_set(cb, "y.t.k2=2", &err), 0);
	CHECK_EQ(bio_config_set(cb, "y.t.k1=1", &err), 0);
	CHECK_EQ(bio_config_digest(ca, NULL, 0, ha, &err), 0);
	CHECK_EQ(bio_config_digest(cb, NULL, 0, hb, &err), 0);
	CHECK_STR(ha, hb);
	/* quoting does not matter, values do */
	CHECK_EQ(bio_config_set(cb, "x.p='1'", &err), 0);
	CHECK_EQ(bio_config_digest(cb, NULL, 0, hb, &err), 0);
	CHECK_STR(ha, hb);
	CHECK_EQ(bio_config_set(cb, "x.p=2", &err), 0);
	CHECK_EQ(bio_config_digest(cb, NULL, 0, hb, &err), 0);
	CHECK(strcmp(ha, hb) != 0);
	/* prefixes: only the named subtrees count */
	const char *px[] = {"x"}, *py[] = {"y"};
	CHECK_EQ(bio_config_digest(ca, px, 1, hx, &err), 0);
	CHECK_EQ(bio_config_digest(cb, px, 1, hb, &err), 0);
	CHECK(strcmp(hx, hb) != 0);
	CHECK_EQ(bio_config_digest(ca, py, 1, hy, &err), 0);
	CHECK_EQ(bio_config_digest(cb, py, 1, hb, &err), 0);
	CHECK_STR(hy, hb);
	CHECK(strcmp(hx, hy) != 0);
	const char *pz[] = {"y", "nosuch"};
	CHECK_EQ(bio_config_digest(ca, pz, 2, hb, &err), BIO_ENOTFOUND);
	/* null and empty string differ */
	CHECK_EQ(bio_config_set(ca, "y.r=", &err), 0);
	CHECK_EQ(bio_config_digest(ca, py, 1, hx, &err), 0);
	CHECK_EQ(bio_config_set(ca, "y.r=''", &err), 0);
	CHECK_EQ(bio_config_digest(ca, py, 1, hy, &err), 0);
	CHECK(strcmp(hx, hy) != 0);
	/* the digest is SHA-256 of the documented canonical form */
	struct bio_config *cc = bio_config_new();
	CHECK_EQ(bio_config_load_base(cc, "c", "b: [1, ~]\na: {z: 'q\"'}\n", 23, &err), 0);
	char hc[65], want[65];
	CHECK_EQ(bio_config_digest(cc, NULL, 0, hc, &err), 0);
	const char canon[] = "{\"a\":{\"z\":\"q\\\"\"},\"b\":[\"1\",null]}";
	bio_sha256_hex(want, canon, sizeof canon - 1);
	CHECK_STR(hc, want);
	bio_config_free(ca);
	bio_config_free(cb);
	bio_config_free(cc);
}

TEST(sha256_vectors)
{
	char hex[65];
	bio_sha256_hex(hex, "", 0);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	bio_sha256_hex(hex, "abc", 3);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	bio_sha256_hex(hex, m448, strlen(m448));
	CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
			   "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	bio_sha256_hex(hex, m896, strlen(m896));
	CHECK_STR(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	/* one million 'a', fed in uneven pieces */
	struct bio_sha256 s;
	bio_sha256_init(&s);
	char a[1000];
	memset(a, 'a', sizeof a);
	size_t left = 1000000, step = 1;
	while (left) {
		size_t n = step < left ? step : left;
		bio_sha256_update(&s, a, n);
		left -= n;
		step = step * 7 % 997 + 1;
	}
	bio_sha256_final_hex(hex, &s);
	CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* every length around the padding boundaries, incremental = one-shot */
	unsigned char buf[200];
	for (size_t k = 0; k < sizeof buf; k++)
		buf[k] = (unsigned char)(k * 31 + 7);
	for (size_t len = 0; len <= sizeof buf; len++) {
		char one[65], inc[65];
		bio_sha256_hex(one, buf, len);
		bio_sha256_init(&s);
		for (size_t k = 0; k < len; k += 3)
			bio_sha256_update(&s, buf + k, len - k < 3 ? len - k : 3);
		bio_sha256_final_hex(inc, &s);
		CHECK_STR(one, inc);
	}
}

/* Compares against Python's hashlib on pseudo-random data of many lengths. */
TEST(sha256_python)
{
	const char *py = getenv("PYTHON");
	if (!py || !*py)
		py = "/usr/bin/python3";
	char path[] = "/tmp/test_sha256_XXXXXX";
	int fd = mkstemp(path);
	BIO_ASSERT(fd >= 0);
	static const size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 65537};
	size_t n_lens = sizeof lens / sizeof *lens;
	unsigned char *buf = malloc(65537);
	BIO_ASSERT(buf);
	uint32_t x = 12345;
	for (size_t k = 0; k < 65537; k++) {
		x = x * 1664525u + 1013904223u;
		buf[k] = (unsigned char)(x >> 24);
	}
	BIO_ASSERT(write(fd, buf, 65537) == 65537);
	close(fd);
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "%s -c 'import hashlib,sys\n"
		 "d=open(sys.argv[1],\"rb\").read()\n"
		 "for n in sys.argv[2:]: print(hashlib.sha256(d[:int(n)]).hexdigest())' %s"
		 " 0 1 55 56 57 63 64 65 119 120 127 128 1000 65537",
		 py, path);
	FILE *p = popen(cmd, "r");
	BIO_ASSERT(p);
	char line[128];
	size_t n_ok = 0;
	for (size_t k = 0; k < n_lens && fgets(line, sizeof line, p); k++) {
		line[strcspn(line, "\n")] = '\0';
		char hex[65];
		bio_sha256_hex(hex, buf, lens[k]);
		CHECK_STR(hex, line);
		n_ok++;
	}
	CHECK_EQ(pclose(p), 0);
	CHECK_EQ(n_ok, n_lens);
	unlink(path);
	free(buf);
}

int main(void)
{
	RUN(base_values);
	RUN(layering_order);
	RUN(unknown_keys);
	RUN(type_errors);
	RUN(strict_scalars);
	RUN(open_maps);
	RUN(set_parsing);
	RUN(refused_yaml);
	RUN(alias_bomb);
	RUN(depth_and_size);
	RUN(load_file);
	RUN(large_maps);
	RUN(dump_round_trip);
	RUN(foreach_leaf);
	RUN(digest);
	RUN(sha256_vectors);
	RUN(sha256_python);
	return test_summary();
}
