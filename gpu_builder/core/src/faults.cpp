// Parsing of `--fault NAME[=ARG]`.
#include "vectorscale/builder/faults.hpp"

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>

#include "vectorscale/core/error.hpp"

namespace vs::builder {

void add_fault(FaultPlan& plan, std::string_view spec) {
  const auto eq = spec.find('=');
  const std::string_view name = spec.substr(0, eq);
  const std::string_view arg = eq == std::string_view::npos ? std::string_view{} : spec.substr(eq + 1);
  const std::string name_s(name), arg_s(arg);
  const bool has_arg = eq != std::string_view::npos;
  auto parse_uint = [&](std::uint64_t max) {
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), v);
    VS_EXPECTS(has_arg && ec == std::errc() && p == arg.data() + arg.size() && v <= max,
               "fault %s needs an integer argument up to %llu, not '%s'", name_s.c_str(),
               static_cast<unsigned long long>(max), arg_s.c_str());
    return v;
  };
  // The faults that are a flag and take no argument.
  static constexpr std::pair<std::string_view, bool FaultPlan::*> kFlags[] = {
      {"corrupt-page", &FaultPlan::corrupt_page}, {"bad-crc", &FaultPlan::bad_crc},
      {"wrong-tid", &FaultPlan::wrong_tid},       {"wrong-labels", &FaultPlan::wrong_labels},
      {"truncate", &FaultPlan::truncate},
  };
  for (const auto& [flag, member] : kFlags) {
    if (name != flag) continue;
    VS_EXPECTS(!has_arg, "fault %s takes no argument", name_s.c_str());
    plan.*member = true;
    return;
  }
  if (name == "slow") {
    std::size_t used = 0;
    double v = -1;
    try {
      v = std::stod(arg_s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    VS_EXPECTS(has_arg && used == arg_s.size() && std::isfinite(v) && v >= 0 && v <= 86400,
               "fault slow needs a number of seconds, not '%s'", arg_s.c_str());
    plan.slow_seconds = v;
  } else if (name == "die-after-pages") {
    plan.die_after_pages = static_cast<std::uint32_t>(parse_uint(0xFFFFFFFFu));
  } else if (name == "fail") {
    const auto code = parse_uint(16);
    VS_EXPECTS(code >= 1, "fault fail needs a gRPC status code from 1 to 16, not '%s'", arg_s.c_str());
    plan.fail_status = static_cast<int>(code);
  } else {
    VS_FAIL(ErrorCode::kInvalidArgument,
            "unknown fault '%s' (known: corrupt-page, bad-crc, wrong-tid, wrong-labels, truncate, slow=SECONDS, "
            "die-after-pages=N, fail=CODE)",
            name_s.c_str());
  }
}

}  // namespace vs::builder
