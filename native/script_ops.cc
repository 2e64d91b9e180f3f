#include "script_ops.h"

#include <torch/library.h>

#include <mutex>

#include "conv2d.h"
#include "pool_activation.h"
#include "sync_batch_norm.h"

namespace convscope {

void RegisterScriptOps() {
  static std::once_flag once;
  // Never destroyed: the dispatcher may outlive the addon's statics at exit, and the operators are
  // wanted for the whole life of the process. A function given to def() serves every backend and
  // records autograd itself (CompositeImplicitAutograd).
  static torch::Library* library = nullptr;
  std::call_once(once, [] {
    library = new torch::Library(torch::Library::DEF, "convscope", c10::nullopt, __FILE__, __LINE__);
    library->def("max_pool2x2_act(Tensor x, float negative_slope) -> Tensor", &MaxPool2x2Activation);
    library->def("conv2d(Tensor x, Tensor weight, Tensor? bias, int[] stride, int[] padding) -> Tensor", &Conv2d);
    library->def("batch_norm(Tensor x, Tensor? weight, Tensor? bias, Tensor(a!) running_mean, Tensor(b!) running_var, "
                 "bool training, float momentum, float eps) -> Tensor", &BatchNormForward);
  });
}

}  // namespace convscope
