// Quantizer-name globs with the semantics of Python's fnmatch.fnmatchcase, which ModelOpt uses to
// match quant_cfg rules (on Linux fnmatch.fnmatch == fnmatchcase: normcase is the identity).
#pragma once

#include <string>
#include <string_view>

namespace microscale::recipe {

// `*` any run (dots included), `?` one byte, `[abc]`, `[a-z]`, `[!x]` classes. Unlike POSIX
// fnmatch(3): no backslash escapes, `[^x]` is a class holding '^' and 'x' (not a negation),
// no [[:alpha:]] classes, an unclosed `[` is a literal, a reversed range (`[z-a]`) is empty.
// Bytes, not code points: names are ASCII.
bool glob_match(std::string_view pattern, std::string_view name);

// ModelOpt matches fused-expert quantizer lists (`...gate_up_proj_weight_quantizers.7`) also under
// their singular name (`...gate_up_proj_weight_quantizer`); this returns that normalised name.
std::string normalize_fused_experts_name(std::string_view name);

}  // namespace microscale::recipe
