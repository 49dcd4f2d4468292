# Shared by the tests that feed a program a stream edited to lie (bio-batch.bats, bio-prep.bats,
# bio-infer.bats, bio-train.bats): `load mutate`. The edits are Python statements over the
# stream's meta and recs (tests/python/mutate_stream.py); T is the test's scratch directory.

# mutated IN EDIT: the stream IN with EDIT applied, written to $T/bad.bs
mutated() {
	"$PYTHON" "$BATS_TEST_DIRNAME/../python/mutate_stream.py" "$1" "$T/bad.bs" "$2"
}

# refuses_each IN CMD...: for each line EDIT|HOW|EXPECT of standard input, IN edited by EDIT into
# $T/bad.bs, then CMD... (which reads $T/bad.bs) exits 1 with an output that
# `assert_output --HOW EXPECT` passes (HOW: partial or regexp)
refuses_each() {
	local in=$1 edit how expect
	shift
	while IFS='|' read -r edit how expect; do
		mutated "$in" "$edit"
		run "$@" </dev/null
		assert_failure 1
		assert_output "--$how" "$expect"
	done
}
