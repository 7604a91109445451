// Package training trains and evaluates gomor models on GoMLX's train package.
//
// "The MoR paper" in this package is Bae et al., "Mixture-of-Recursions: Learning Dynamic
// Recursive Depths for Adaptive Token-Level Computation" (arXiv 2507.10524), with its released
// configs. From it come the optimiser (AdamW β 0.9/0.95, weight decay 0.1, clipping at 1.0), the
// warmup-stable-decay schedule, the forward-FLOPs budget rule and the validation NLL (mean over
// rows of each row's mean next-token NLL).
//
// Train runs a model under a budget in steps, tokens or forward FLOPs, logs every step to
// metrics.jsonl, and writes atomic checkpoints from which a run resumes exactly. EvaluateRun
// reports the NLL per routing mode and depth cap, the dead-token ratio and task scores in
// eval.json.
package training
