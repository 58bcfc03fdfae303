// microscale error type. The library throws microscale::Error with a message that names the
// file, tensor, shape or key involved; only cli/ catches and exits (DESIGN.md "Errors, not aborts").
#pragma once

#include <stdexcept>
#include <string>

namespace microscale {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace microscale
