#!/usr/bin/env bats
# Facts that cross stages travel in stream headers (sample shape, modalities, label names, epochs)
# and are checked where two streams meet: each refusal is one line that names both sides, what
# each holds, and the configuration key to change.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'

setup_file() {
	small_fixture
	bio-batch $C --epochs 1 "$SS" >"$FX/b1.bs"
	bio-train $C -o "$FX/ck" "$FX/b1.bs" 2>/dev/null
	bio-prep --set prep.size=32 "$FX/manifest.bs" >"$FX/s32.bs"
	bio-scan --set scan.root="$FX/synth" --set 'scan.modalities=[iris]' 2>/dev/null |
		bio-prep --set prep.size=16 >"$FX/iris.bs"
	bio-synth -o "$FX/synth6" --set synth.subjects=6 --set synth.samples=4 --set synth.size=32 \
		>/dev/null 2>&1
	bio-scan --set scan.root="$FX/synth6" 2>/dev/null | bio-prep --set prep.size=16 >"$FX/s6.bs"
}

setup() {
	T="$BATS_TEST_TMPDIR"
}

@test "batches meet the model (bio-train): prep.size against model.input_size" {
	run bio-train $C --set model.input_size=32 -o "$T/x" "$FX/b1.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial "16x16"
	assert_output --partial "32x32"
	assert_output --partial "model.input_size"
	assert_output --partial "prep.size"
	[ ! -e "$T/x" ]
}

@test "batches meet the model (bio-train): modalities" {
	run bio-train $C --set 'model.modalities=[iris,face]' -o "$T/x" "$FX/b1.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial "no modality 'face'"
	assert_output --partial "model.modalities"
}

@test "batches meet the checkpoint (bio-train --resume): labels and epochs" {
	# other identities (6 instead of 5): the classifier differs
	bio-batch $C --epochs 2 --start-epoch 1 "$FX/s6.bs" >"$T/b6.bs"
	run bio-train $C --resume "$FX/ck/last.ckpt" -o "$T/x" "$T/b6.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output "bio-train: $FX/ck/last.ckpt: the checkpoint's model has 10 classes, the batches carry 12 labels (labels come from bio-scan: scan.identity, scan.root)"
	# the checkpoint has done the one epoch the batches hold
	run bio-train $C --resume "$FX/ck/last.ckpt" -o "$T/x" "$FX/b1.bs"
	assert_failure 1
	assert_output "bio-train: $FX/ck/last.ckpt: the checkpoint has completed 1 epochs; the batches stop at epoch 1 (batch.epochs 1): nothing to train (bio-batch --epochs above 1 continues it)"
	# another model: the key and both values
	bio-batch $C --epochs 3 --start-epoch 1 "$SS" >"$T/b3.bs"
	run bio-train $C --set model.hidden=32 --resume "$FX/ck/last.ckpt" -o "$T/x" "$T/b3.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output "bio-train: $FX/ck/last.ckpt: the checkpoint's model differs from the configured one: model.hidden 16 in the checkpoint, 32 configured"
	[ ! -e "$T/x" ]
}

@test "samples meet the model (bio-infer): prep.size against model.input_size" {
	run bio-infer -m "$FX/ck/best.ckpt" -o "$T/p.bs" "$FX/s32.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial "$FX/s32.bs: header meta 'shape': the samples are 32x32, the model $FX/ck/best.ckpt takes 16x16 (prep.size of the samples, model.input_size of the model)"
	[ ! -e "$T/p.bs" ]
}

@test "samples meet the model (bio-infer): modalities" {
	run bio-infer -m "$FX/ck/best.ckpt" -o "$T/p.bs" "$FX/iris.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial "$FX/iris.bs: the samples carry no modality 'fingerprint' that the model $FX/ck/best.ckpt needs (scan.modalities of the samples, model.modalities of the model)"
}

@test "samples meet the model (bio-infer): labels" {
	run bio-infer -m "$FX/ck/best.ckpt" -o "$T/p.bs" "$FX/s6.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial "$FX/s6.bs: the samples against the model $FX/ck/best.ckpt (labels come from bio-scan: scan.identity, scan.root)"
	assert_output --partial "not the same label set"
}
