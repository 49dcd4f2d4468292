/* Evaluation of predictions streams, the tracking run (see eval.h): which run --track-run names
 * (a run directory of a file store, or a run id in the store or server at tracking.uri), and
 * logging the figures (metrics eval_*, step 0) and the report, curves and plots (artifacts
 * under eval/) to it, leaving its status as it was. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bio/fs.h"
#include "bio/track.h"
#include "eval_priv.h"

static int oom(struct bio_error *err)
{
	return bio_error_set(err, BIO_ENOMEM, "out of memory");
}

/* A run directory <store>/<experiment>/<run_id>: its absolute path, id and store. */
static int resolve_dir(struct eval_track *tt, const char *run, struct bio_error *err)
{
	char *abs = realpath(run, NULL);
	if (!abs)
		return bio_error_set(err, BIO_EIO, "%s: %s", run, strerror(errno));
	tt->run_dir = abs;
	char *slash = strrchr(abs, '/');
	if (!slash || slash == abs)
		return bio_error_set(err, BIO_EINVAL, "%s: not a run directory of a tracking store",
				     run);
	tt->run_id = strdup(slash + 1);
	char *up = strndup(abs, (size_t)(slash - abs));
	char *s2 = up ? strrchr(up, '/') : NULL;
	if (!tt->run_id || !up || !s2) {
		free(up);
		return bio_error_set(err, BIO_EINVAL, "%s: not a run directory of a tracking store",
				     run);
	}
	*s2 = '\0';
	tt->root = up;
	return 0;
}

int bio_eval_track_resolve(struct bio_eval *ev, const char *run, const char **run_dir,
			   struct bio_error *err)
{
	struct eval_track *tt = &ev->track;
	const char *uri;
	int rc = bio_config_get_str(ev->cfg, "tracking.uri", &uri, err);
	if (rc < 0)
		return rc;
	*run_dir = NULL;
	struct stat sb;
	if (bio_track_uri_is_server(uri) && stat(run, &sb) != 0) {
		tt->server = uri;
		tt->run_id = strdup(run);
		return tt->run_id ? 0 : oom(err);
	}
	if (stat(run, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		if ((rc = resolve_dir(tt, run, err)) < 0)
			return rc;
	} else {
		const char *root = strncmp(uri, "file://", 7) == 0 ? uri + 7 : uri;
		tt->root = strdup(root);
		tt->run_id = strdup(run);
		if (!tt->root || !tt->run_id)
			return oom(err);
		rc = strchr(run, '/') ? BIO_ENOTFOUND : bio_track_run_find(&tt->run_dir, uri, run, err);
		if (rc == BIO_ENOTFOUND)
			return bio_error_set(err, rc, "--track-run %s: no such run in %s", run,
					     tt->root);
		if (rc < 0 && err) {
			char m[BIO_ERROR_MSG_MAX];
			memcpy(m, err->msg, sizeof m);
			bio_error_set(err, rc, "--track-run %s: %s (tracking.uri)", run, m);
		}
		if (rc < 0)
			return rc;
	}
	char *meta = bio_fs_path_join(tt->run_dir, "meta.yaml");
	if (!meta)
		return oom(err);
	rc = access(meta, R_OK) != 0 ? bio_error_set(err, BIO_ENOTFOUND, "%s: %s (not a tracking "
						     "run)", meta, strerror(errno))
				      : 0;
	free(meta);
	*run_dir = tt->run_dir;
	return rc;
}

static int log_metric(struct bio_track_run *run, const char *mod, const char *name, int ok,
		      double v, struct bio_error *err)
{
	if (!ok)
		return 0;
	char key[128];
	if (mod)
		snprintf(key, sizeof key, "eval_%s_%s", mod, name);
	else
		snprintf(key, sizeof key, "eval_%s", name);
	return bio_track_log_metric(run, key, v, 0, 0, err);
}

/* The figures of every section as metrics eval_<section>_<figure>, the closed-set ones as
 * eval_accuracy and eval_top<k>. */
static int log_metrics(struct bio_track_run *run, const struct eval_set *e, struct bio_error *err)
{
	int rc = 0;
	if (e->has_closed) {
		char name[32];
		snprintf(name, sizeof name, "top%lld", (long long)e->topk);
		if ((rc = log_metric(run, NULL, "accuracy", 1,
				     (double)e->conf.n_correct / (double)e->conf.n_total, err)) < 0 ||
		    (rc = log_metric(run, NULL, name, eval_topk_k(e) == (size_t)e->topk,
				     (double)e->conf.n_topk / (double)e->conf.n_total, err)) < 0)
			return rc;
	}
	for (int m = 0; m < e->n_mod && rc == 0; m++) {
		const struct eval_section *md = &e->mod[m];
		const struct bio_verif *v = &md->v;
		const char *s = md->name;
		int ok = md->has_verif, ci = ok && md->has_ci && md->ci[0].n_valid > 0;
		const struct {
			const char *name;
			int ok;
			double v;
		} fig[] = {
			{"eer", ok, v->eer},
			{"fnmr_at_fmr_1pct", ok, v->fnmr_at_fmr[0]},
			{"fnmr_at_fmr_0_1pct", ok, v->fnmr_at_fmr[1]},
			{"fnmr_at_fmr_0", ok, v->fnmr_at_fmr[2]},
			{"zero_fnmr", ok, v->zero_fnmr},
			{"auc", ok, v->auc},
			{"rank1", md->has_cmc, bio_cmc_rank(&md->cmc, 1)},
			{"rank5", md->has_cmc, bio_cmc_rank(&md->cmc, 5)},
			{"eer_ci95_lo", ci, md->ci[0].lo},
			{"eer_ci95_hi", ci, md->ci[0].hi},
			{"dev_fmr", md->has_dev, md->dev_fmr},
			{"dev_fnmr", md->has_dev, md->dev_fnmr},
			{"dev_hter", md->has_dev, (md->dev_fmr + md->dev_fnmr) / 2.0},
		};
		for (size_t i = 0; i < sizeof fig / sizeof fig[0] && rc == 0; i++)
			rc = log_metric(run, s, fig[i].name, fig[i].ok, fig[i].v, err);
	}
	return rc;
}

/* Logs every regular file of dir (not hidden) as an artifact under subdir. */
static int log_dir(struct bio_track_run *run, const char *dir, const char *subdir,
		   struct bio_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return bio_error_set(err, BIO_EIO, "%s: %s", dir, strerror(errno));
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *p = bio_fs_path_join(dir, de->d_name);
		if (!p) {
			rc = oom(err);
			break;
		}
		struct stat sb;
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
			rc = bio_track_log_artifact(run, p, subdir, err);
		free(p);
	}
	closedir(d);
	return rc;
}

/* The report of e written as <new temp dir>/report.yaml; *dir and *path returned new. */
static int report_copy(const struct eval_set *e, char **dir, char **path, struct bio_error *err)
{
	char tmpdir[] = "/tmp/bio-eval-XXXXXX";
	*dir = *path = NULL;
	if (!mkdtemp(tmpdir))
		return bio_error_set(err, BIO_EIO, "temp directory: %s", strerror(errno));
	*dir = strdup(tmpdir);
	*path = bio_fs_path_join(tmpdir, "report.yaml");
	if (!*dir || !*path) {
		rmdir(tmpdir);
		return oom(err);
	}
	FILE *f = fopen(*path, "w");
	if (!f)
		return bio_error_set(err, BIO_EIO, "%s: %s", *path, strerror(errno));
	eval_write_report(e, f);
	if (fclose(f) != 0)
		return bio_error_set(err, BIO_EIO, "%s: write error", *path);
	return 0;
}

int bio_eval_track_log(struct bio_eval *ev, const char *report_path, const char *curves,
		       const char *plots, struct bio_error *err)
{
	const struct eval_track *tt = &ev->track;
	char *copy_dir = NULL, *copy = NULL;
	struct bio_track_run *run = NULL;
	int rc = 0;
	/* the report as an artifact: the file given, or a copy */
	if (!report_path && (rc = report_copy(&ev->in, &copy_dir, &copy, err)) < 0)
		goto out;
	if (!report_path)
		report_path = copy;
	int status = BIO_TRACK_RUNNING; /* the status the run's meta.yaml holds now */
	struct bio_error ignored = {0};
	if (!tt->server && bio_track_run_read_status(&status, tt->run_dir, &ignored) < 0)
		status = BIO_TRACK_RUNNING;
	struct bio_track_opts o;
	if ((rc = bio_track_opts_from_config(&o, ev->cfg, err)) < 0)
		goto out;
	/* a server run: journaled in tracking.cache_dir's spool, its status left as it is */
	run = tt->server ? bio_track_run_open_opts(tt->server, &o, tt->run_id, err)
			 : bio_track_run_open(tt->root, tt->run_id, err);
	if (!run) {
		rc = err ? err->code : BIO_EIO;
		goto out;
	}
	if ((rc = log_metrics(run, &ev->in, err)) < 0 ||
	    (rc = bio_track_log_artifact(run, report_path, "eval", err)) < 0 ||
	    (curves && (rc = log_dir(run, curves, "eval/curves", err)) < 0) ||
	    (plots && (rc = log_dir(run, plots, "eval/plots", err)) < 0) ||
	    (status >= BIO_TRACK_FINISHED && (rc = bio_track_run_end(run, status, err)) < 0))
		goto out;
	if (tt->server && bio_track_flush_now(run, err) < 0)
		rc = 1; /* a warning: the figures stay journaled */
out:
	bio_track_run_free(run);
	if (copy)
		unlink(copy);
	if (copy_dir)
		rmdir(copy_dir);
	free(copy);
	free(copy_dir);
	return rc;
}
