{
  "variables": {
    # A path that starts "native/, so that scripts/cuda-check.js's copy of this file rewrites it too.
    "pch_header": "native/pch/convscope_pch.h"
  },
  "targets": [
    {
      "target_name": "convscope",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/args.cc",
        "native/tensor.cc",
        "native/device.cc",
        "native/ops.cc",
        "native/optimizer.cc",
        "native/checkpoint.cc",
        "native/script_model.cc",
        "native/trainer.cc",
        "native/precision.cc",
        "native/batch.cc",
        "native/train_step.cc",
        "native/fused_adam.cc",
        "native/cpu_block_cache.cc",
        "native/mkl_cpu_check.cc",
        "native/pool_activation.cc",
        "native/script_ops.cc",
        "native/conv2d.cc"
      ],
      "include_dirs": [
        "<(INTERMEDIATE_DIR)/pch",
        "native/pch",
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.js include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "<!@(node scripts/find-libtorch.js defines)"
      ],
      "libraries": [
        "<!@(node scripts/find-libtorch.js libs)"
      ],
      "cflags!": [
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti",
        "-std=gnu++17",
        "-std=gnu++20"
      ],
      "cflags_cc": [
        "<!@(node scripts/find-libtorch.js cflags)",
        "-fexceptions",
        "-frtti",
        "-O2",
        "-fopenmp",
        "-fno-math-errno",
        "-fno-trapping-math",
        "-Winvalid-pch",
        "-Wno-unused-parameter"
      ],
      # The external headers of native/pch/convscope_pch.h, precompiled once with exactly the flags
      # make compiles the sources with (its own variables, expanded when the action runs). Objects
      # wait for it (gyp makes them order-only dependants of every action), and a change of flags
      # rebuilds both (gyp compares command lines). The objects' dependency files do not name the
      # .gch, so a change of convscope_pch.h itself needs a full rebuild: scripts/setup.sh does one.
      "actions": [
        {
          "action_name": "precompile_headers",
          "inputs": ["<(pch_header)"],
          "outputs": ["<(INTERMEDIATE_DIR)/pch/convscope_pch.h.gch"],
          "action": [
            "sh", "-c",
            "cd $(CURDIR) && $(CXX.target) $(DEFS_$(BUILDTYPE)) $(INCS_$(BUILDTYPE)) $(CFLAGS_$(BUILDTYPE)) $(CFLAGS_CC_$(BUILDTYPE)) -x c++-header $(abs_srcdir)/<(pch_header) -o <(INTERMEDIATE_DIR)/pch/convscope_pch.h.gch"
          ]
        }
      ],
      "ldflags": [
        "-fopenmp"
      ],
      "conditions": [
        [
          "'<!(node scripts/find-libtorch.js cuda-sources)'=='1'",
          {
            "sources": [
              "native/cuda/cuda_runtime.cc",
              "native/cuda/graph_step.cc"
            ]
          }
        ]
      ]
    }
  ]
}
