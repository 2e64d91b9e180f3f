{
  "targets": [
    {
      "target_name": "convscope",
      # native/unity/*.cc include the other sources: two units for two cores, each parsing libtorch's
      # headers once (native/unity/bindings.cc says why).
      "sources": [
        "native/unity/bindings.cc",
        "native/unity/kernels.cc",
        "native/errors.cc",
        "native/args.cc",
        "native/mkl_cpu_check.cc",
        # The one file that sees gloo's headers, compiled on its own (native/distributed_gloo.h says why).
        "native/distributed_gloo.cc"
      ],
      "include_dirs": [
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
        "-Wno-unused-parameter"
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
              "native/cuda/graph_step.cc",
              "native/cuda/distributed_nccl.cc"
            ]
          }
        ]
      ]
    }
  ]
}
