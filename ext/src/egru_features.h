/*
 * egru_features.h - what this build of the runtime contains (docs/embedded.md, "Configuring a
 * firmware build").
 *
 * Every option is a macro EGRU_CFG_<NAME> that is 0 (left out) or 1 (built in). A firmware sets
 * the ones it wants before this header is read, normally by compiling every file of ext/src with
 * `-include egru_config.h`, the header `tools/egru2c.py MODEL model.h --config egru_config.h`
 * writes for exactly what that model uses. Anything not set defaults to 1: the full runtime, as
 * the host build and the Python package use it. A model that needs a left-out feature is refused
 * by egru_model_init with EGRU_ERR_UNSUPPORTED, never mis-run.
 *
 * Code tests options with plain `if (EGRU_CFG_X)` where it can (the compiler drops the dead
 * branch, and --gc-sections the functions only it called) and with #if only where a declaration
 * or a table must go.
 */
#ifndef EGRU_FEATURES_H
#define EGRU_FEATURES_H

/* Layer ops (egru_op_t). */
#ifndef EGRU_CFG_OP_EMBEDDING
#define EGRU_CFG_OP_EMBEDDING 1
#endif
#ifndef EGRU_CFG_OP_GRU
#define EGRU_CFG_OP_GRU 1
#endif
#ifndef EGRU_CFG_OP_LSTM
#define EGRU_CFG_OP_LSTM 1
#endif
#ifndef EGRU_CFG_OP_SIMPLE_RNN
#define EGRU_CFG_OP_SIMPLE_RNN 1
#endif
#ifndef EGRU_CFG_OP_DENSE
#define EGRU_CFG_OP_DENSE 1
#endif
#ifndef EGRU_CFG_OP_CONV1D
#define EGRU_CFG_OP_CONV1D 1
#endif
#ifndef EGRU_CFG_OP_GLOBAL_POOL
#define EGRU_CFG_OP_GLOBAL_POOL 1
#endif
#ifndef EGRU_CFG_OP_AFFINE
#define EGRU_CFG_OP_AFFINE 1
#endif
#ifndef EGRU_CFG_OP_LAYER_NORM
#define EGRU_CFG_OP_LAYER_NORM 1
#endif
#ifndef EGRU_CFG_OP_ACTIVATION
#define EGRU_CFG_OP_ACTIVATION 1
#endif
#ifndef EGRU_CFG_OP_FLATTEN
#define EGRU_CFG_OP_FLATTEN 1
#endif
#ifndef EGRU_CFG_OP_MASKING
#define EGRU_CFG_OP_MASKING 1
#endif

/* Activations (egru_act_t), wherever they appear: a layer's activation, a recurrent layer's
 * activation or recurrent_activation, the Activation op. LINEAR is always in. */
#ifndef EGRU_CFG_ACT_RELU
#define EGRU_CFG_ACT_RELU 1
#endif
#ifndef EGRU_CFG_ACT_SIGMOID
#define EGRU_CFG_ACT_SIGMOID 1
#endif
#ifndef EGRU_CFG_ACT_TANH
#define EGRU_CFG_ACT_TANH 1
#endif
#ifndef EGRU_CFG_ACT_SOFTMAX
#define EGRU_CFG_ACT_SOFTMAX 1
#endif
#ifndef EGRU_CFG_ACT_HARD_SIGMOID
#define EGRU_CFG_ACT_HARD_SIGMOID 1
#endif
#ifndef EGRU_CFG_ACT_ELU
#define EGRU_CFG_ACT_ELU 1
#endif
#ifndef EGRU_CFG_ACT_SOFTSIGN
#define EGRU_CFG_ACT_SOFTSIGN 1
#endif
#ifndef EGRU_CFG_ACT_SOFTPLUS
#define EGRU_CFG_ACT_SOFTPLUS 1
#endif
#ifndef EGRU_CFG_ACT_LEAKY_RELU
#define EGRU_CFG_ACT_LEAKY_RELU 1
#endif

/* Layer features. */
#ifndef EGRU_CFG_BIDIRECTIONAL /* EGRU_FLAG_BIDIRECTIONAL recurrent layers */
#define EGRU_CFG_BIDIRECTIONAL 1
#endif
#ifndef EGRU_CFG_GO_BACKWARDS /* EGRU_FLAG_GO_BACKWARDS recurrent layers */
#define EGRU_CFG_GO_BACKWARDS 1
#endif
#ifndef EGRU_CFG_MASK /* masks: Embedding mask_zero, and layers flagged EGRU_FLAG_MASKED */
#define EGRU_CFG_MASK 1
#endif
#ifndef EGRU_CFG_GRU_RESET_BEFORE /* GRU with reset_after = 0 (Keras 2's default) */
#define EGRU_CFG_GRU_RESET_BEFORE 1
#endif
#ifndef EGRU_CFG_GRU_RESET_AFTER /* GRU with reset_after = 1 (Keras' default) */
#define EGRU_CFG_GRU_RESET_AFTER 1
#endif
#ifndef EGRU_CFG_INT8 /* int8 tensors (quant_version 1, docs/quantization.md) */
#define EGRU_CFG_INT8 1
#endif
#ifndef EGRU_CFG_INT16X8 /* int16x8 integer-only models (quant_version 2) and the _s16 API */
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* Opt-in on Cortex-M (egru2c's configuration header for an int16x8 model sets it), so that the
 * full float runtime of a firmware stays the size it was (issue #11's budget). */
#define EGRU_CFG_INT16X8 0
#else
#define EGRU_CFG_INT16X8 1
#endif
#endif
#ifndef EGRU_CFG_GRAPH /* graph files (docs/format.md "Graphs") and egru_run of them */
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* Opt-in on Cortex-M (egru2c's configuration header for a graph model sets it): a chain
 * firmware stays the size it was (the graph reader and runtime are about 7 KB on an M4). */
#define EGRU_CFG_GRAPH 0
#else
#define EGRU_CFG_GRAPH 1
#endif
#endif
/* The float32 runtime: float32 and int8 models, egru_forward_tokens / _features, sessions, fold
 * and pack. 0 (an int16x8 firmware: egru2c writes it for int16x8 models) leaves every float
 * kernel and layer out, so that a core without an FPU links no soft-float helper; those
 * functions then return EGRU_ERR_UNSUPPORTED and init refuses float and int8 models. */
#ifndef EGRU_CFG_FLOAT
#define EGRU_CFG_FLOAT 1
#endif
#if !EGRU_CFG_FLOAT && !EGRU_CFG_INT16X8
#error "EGRU_CFG_FLOAT and EGRU_CFG_INT16X8 are both 0: the build runs no model"
#endif

/* Kernel sets (docs/kernels.md): which sets the build contains, so that a firmware links only the
 * one it runs (nothing points at a left-out set; egru_model_use_kernels of one gives
 * EGRU_ERR_UNSUPPORTED). At least one must stay. EGRU_KERNELS_AUTO takes cortex_m on M-profile
 * targets, ref elsewhere when no SIMD set applies, and the other of the two when one is out. */
#ifndef EGRU_CFG_KERNELS_REF /* the scalar reference kernels (ref) */
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* On Cortex-M the cortex_m set gives the reference's bits (docs/kernels.md, "Cortex-M"): a
 * firmware needs only it. Define EGRU_CFG_KERNELS_REF 1 to have both (the kernel tests do). */
#define EGRU_CFG_KERNELS_REF 0
#else
#define EGRU_CFG_KERNELS_REF 1
#endif
#endif
#ifndef EGRU_CFG_KERNELS_CORTEX_M /* the Cortex-M kernels (cortex_m) */
#define EGRU_CFG_KERNELS_CORTEX_M 1
#endif
/* The cortex_m int8 kernels' fast variant (egru_matvec_s8_cortex_m.c): about 3.3 KB more flash,
 * a third fewer instructions per int8 step on an M4F (sensor model: 39,541 -> 26,636). A speed/size
 * choice, not a feature: 0 by default (the full runtime's size), and egru2c's headers set it to 1
 * for int8 models. */
#ifndef EGRU_CFG_CM_S8_FAST
#define EGRU_CFG_CM_S8_FAST 0
#endif
#if !EGRU_CFG_KERNELS_REF && !EGRU_CFG_KERNELS_CORTEX_M
#error "EGRU_CFG_KERNELS_REF and EGRU_CFG_KERNELS_CORTEX_M are both 0: the build needs a kernel set"
#endif

/* Runtime services. */
#ifndef EGRU_CFG_FAST_PLAN /* the whole-sequence forward plan; 0: always the low-memory plan */
#define EGRU_CFG_FAST_PLAN 1
#endif
#ifndef EGRU_CFG_PACK /* egru_model_pack and the transposed (matvec_t / matmul_t) kernels */
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* Opt-in on Cortex-M: packing copies the recurrent weights to RAM for the SIMD sets' access
 * pattern, and the cortex_m set's transposed kernels are the reference's (docs/kernels.md), so a
 * firmware never gains from it (egru2c's headers set 0 too). */
#define EGRU_CFG_PACK 0
#else
#define EGRU_CFG_PACK 1
#endif
#endif
#ifndef EGRU_CFG_WORKERS /* egru_model_use_workers: batch-1 steps split over caller threads */
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define EGRU_CFG_WORKERS 0 /* one core: the split code stays out of a firmware */
#else
#define EGRU_CFG_WORKERS 1
#endif
#endif
#ifndef EGRU_CFG_FOLD /* egru_model_fold */
#define EGRU_CFG_FOLD 1
#endif
#ifndef EGRU_CFG_LAYER_CACHE /* egru_model_cache_layers: every layer decoded once */
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* Opt-in on Cortex-M: RAM for every decoded layer to save a few hundred instructions per call,
 * and the full runtime of a firmware stays the size it was (issue #11's budget). */
#define EGRU_CFG_LAYER_CACHE 0
#else
#define EGRU_CFG_LAYER_CACHE 1
#endif
#endif
#ifndef EGRU_CFG_STATUS_STRINGS /* 0: egru_status_str gives "" for every code (saves the table) */
#define EGRU_CFG_STATUS_STRINGS 1
#endif
#ifndef EGRU_CFG_CRC_TABLE /* 0: CRC-32 bit by bit (no 1 KB table, ~7x slower to check) */
#define EGRU_CFG_CRC_TABLE 1
#endif

#endif /* EGRU_FEATURES_H */
