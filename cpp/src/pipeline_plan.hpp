// How a Pipeline feeds the network: the spec checked against the session's inputs and outputs once, at
// construction (pipeline_plan.cpp), then used by every run (pipeline.cpp).
#pragma once

#include <string>
#include <vector>

#include "sightd/engine.hpp"
#include "sightd/preprocess.hpp"
#include "sightd/tensor.hpp"

namespace sightd {

struct FeedPlan {
  std::string tensor_name;
  bool constant = false;
  // The network's input has a batch dimension. When it has not, one row of the prepared tensor (which always
  // has one) is fed without it: one image per run, or a constant that is the same for a whole group.
  bool batch_dim = true;
  ElementType network_type = ElementType::kFloat32;  // constants are converted to it (they come as float32)
};

struct PipelinePlan {
  std::vector<FeedPlan> feeds;            // image inputs then constants, in the spec's order
  std::vector<std::string> output_names;  // the outputs each run asks for
  int fixed_batch = 0;                    // the network's fixed batch dimension; 0 when dynamic
  int max_batch = 0;                      // largest batch of one run; 0: unlimited
  bool batched_output = true;
};

// Throws Error(kInvalidArgument) naming the spec field ("inputs[1].tensor_name", "inputs[0].image.target_size",
// "batched_output", "output_tensors[2]"...) when the spec cannot feed the session or an output is missing.
PipelinePlan plan_pipeline(const Session& session, const PreprocessingSpec& spec,
                           const std::vector<std::string>& output_names);

}  // namespace sightd
