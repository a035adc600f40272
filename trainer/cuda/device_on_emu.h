/*
 * Force-included (-include) into test_cuda_device.c to build test_cuda_device_on_emu: every name
 * of the device API (sluice/nn_cuda_api.h, sluice/cuda_train_api.h) becomes its emulator twin,
 * so the device test's own logic (expected values, call sequences, checkpoint and feed checks)
 * runs in every build, GPU or not; only its tolerances go untested there, since the emulator
 * matches the CPU more closely than a device will. A name missing here links against sl_cuda_*
 * and fails the build, which is the reminder to add it.
 */
#ifndef SL_CUDA_DEVICE_ON_EMU_H
#define SL_CUDA_DEVICE_ON_EMU_H

#define sl_cuda                   sl_cuda_emu
#define sl_cuda_add_fwd           sl_cuda_emu_add_fwd
#define sl_cuda_add_into          sl_cuda_emu_add_into
#define sl_cuda_bn_bwd            sl_cuda_emu_bn_bwd
#define sl_cuda_bn_fwd_eval       sl_cuda_emu_bn_fwd_eval
#define sl_cuda_bn_fwd_train      sl_cuda_emu_bn_fwd_train
#define sl_cuda_close             sl_cuda_emu_close
#define sl_cuda_col2im            sl_cuda_emu_col2im
#define sl_cuda_conv_bwd          sl_cuda_emu_conv_bwd
#define sl_cuda_conv_fwd          sl_cuda_emu_conv_fwd
#define sl_cuda_copy              sl_cuda_emu_copy
#define sl_cuda_device_count      sl_cuda_emu_device_count
#define sl_cuda_download          sl_cuda_emu_download
#define sl_cuda_errmsg            sl_cuda_emu_errmsg
#define sl_cuda_feed              sl_cuda_emu_feed
#define sl_cuda_feed_close        sl_cuda_emu_feed_close
#define sl_cuda_feed_errmsg       sl_cuda_emu_feed_errmsg
#define sl_cuda_feed_next         sl_cuda_emu_feed_next
#define sl_cuda_feed_open         sl_cuda_emu_feed_open
#define sl_cuda_feed_slot         sl_cuda_emu_feed_slot
#define sl_cuda_feed_submit       sl_cuda_emu_feed_submit
#define sl_cuda_feed_wait_seconds sl_cuda_emu_feed_wait_seconds
#define sl_cuda_free              sl_cuda_emu_free
#define sl_cuda_gap_bwd           sl_cuda_emu_gap_bwd
#define sl_cuda_gap_fwd           sl_cuda_emu_gap_fwd
#define sl_cuda_gemm_name         sl_cuda_emu_gemm_name
#define sl_cuda_grad_norm         sl_cuda_emu_grad_norm
#define sl_cuda_host_alloc        sl_cuda_emu_host_alloc
#define sl_cuda_host_free         sl_cuda_emu_host_free
#define sl_cuda_im2col            sl_cuda_emu_im2col
#define sl_cuda_linear_bwd        sl_cuda_emu_linear_bwd
#define sl_cuda_linear_fwd        sl_cuda_emu_linear_fwd
#define sl_cuda_malloc            sl_cuda_emu_malloc
#define sl_cuda_maxpool2_bwd      sl_cuda_emu_maxpool2_bwd
#define sl_cuda_maxpool2_fwd      sl_cuda_emu_maxpool2_fwd
#define sl_cuda_model             sl_cuda_emu_model
#define sl_cuda_model_backward    sl_cuda_emu_model_backward
#define sl_cuda_model_create      sl_cuda_emu_model_create
#define sl_cuda_model_errmsg      sl_cuda_emu_model_errmsg
#define sl_cuda_model_forward     sl_cuda_emu_model_forward
#define sl_cuda_model_free        sl_cuda_emu_model_free
#define sl_cuda_model_grads       sl_cuda_emu_model_grads
#define sl_cuda_model_host        sl_cuda_emu_model_host
#define sl_cuda_model_load        sl_cuda_emu_model_load
#define sl_cuda_model_loss_scale  sl_cuda_emu_model_loss_scale
#define sl_cuda_model_optim_steps sl_cuda_emu_model_optim_steps
#define sl_cuda_model_params      sl_cuda_emu_model_params
#define sl_cuda_model_save        sl_cuda_emu_model_save
#define sl_cuda_model_sync_host   sl_cuda_emu_model_sync_host
#define sl_cuda_model_train_step  sl_cuda_emu_model_train_step
#define sl_cuda_model_zero_grad   sl_cuda_emu_model_zero_grad
#define sl_cuda_name              sl_cuda_emu_name
#define sl_cuda_normalize_u8      sl_cuda_emu_normalize_u8
#define sl_cuda_open              sl_cuda_emu_open
#define sl_cuda_optim_step        sl_cuda_emu_optim_step
#define sl_cuda_relu_bwd          sl_cuda_emu_relu_bwd
#define sl_cuda_relu_fwd          sl_cuda_emu_relu_fwd
#define sl_cuda_round_bf16        sl_cuda_emu_round_bf16
#define sl_cuda_round_f16         sl_cuda_emu_round_f16
#define sl_cuda_scale             sl_cuda_emu_scale
#define sl_cuda_softmax_xent_bwd  sl_cuda_emu_softmax_xent_bwd
#define sl_cuda_softmax_xent_fwd  sl_cuda_emu_softmax_xent_fwd
#define sl_cuda_sync              sl_cuda_emu_sync
#define sl_cuda_unscale           sl_cuda_emu_unscale
#define sl_cuda_upload            sl_cuda_emu_upload
#define sl_cuda_zero              sl_cuda_emu_zero

#endif
