#include "calib/tokenizer_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <mutex>

#include "microscale/error.h"

namespace microscale::calib {

struct Regex::Impl {
    pcre2_code* code = nullptr;
    bool jit = false;
    // Match data is per call site state; one block guarded by a mutex keeps find_all const and
    // thread-safe without allocating per call in the common single-threaded case.
    mutable std::mutex mu;
    pcre2_match_data* md = nullptr;
};

Regex::Regex(std::string_view pattern, const std::string& where) : impl_(std::make_unique<Impl>()) {
    int err = 0;
    PCRE2_SIZE off = 0;
    impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!impl_->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        throw Error(where + ": invalid regex at offset " + std::to_string(off) + ": " +
                    reinterpret_cast<const char*>(msg));
    }
    impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
    impl_->md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
}

Regex::~Regex() {
    if (impl_) {
        pcre2_match_data_free(impl_->md);
        pcre2_code_free(impl_->code);
    }
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
    out.clear();
    std::lock_guard<std::mutex> lock(impl_->mu);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    while (pos <= text.size()) {
        const int rc = impl_->jit
            ? pcre2_jit_match(impl_->code, subject, text.size(), pos, 0, impl_->md, nullptr)
            : pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, impl_->md,
                          nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) throw Error("tokenizer regex match failed (PCRE2 error " + std::to_string(rc) + ")");
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(impl_->md);
        const size_t b = ov[0], e = ov[1];
        if (e > b) {
            out.emplace_back(b, e);
            pos = e;
        } else {  // empty match: skip one code point
            if (b >= text.size()) break;
            pos = b + 1;
            while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
        }
    }
}

std::string Regex::escape(std::string_view literal) {
    std::string out = "\\Q";
    for (size_t i = 0; i < literal.size(); ++i) {
        if (literal.substr(i, 2) == "\\E") {  // \E would end the quote: close, escape, reopen
            out += "\\E\\\\E\\Q";
            ++i;
        } else {
            out += literal[i];
        }
    }
    return out + "\\E";
}

}  // namespace microscale::calib
