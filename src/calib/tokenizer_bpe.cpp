#include "calib/tokenizer_bpe.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <algorithm>

#include "calib/tokenizer_json.h"
#include "calib/tokenizer_text.h"

namespace microscale::calib {

namespace {

uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

uint64_t slot_of(uint64_t key, uint64_t mask) { return (key * 0x9E3779B97F4A7C15ull >> 20) & mask; }

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, const std::string& file) : file_(file) {
    const JsonPath root{file, "model"};
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (model.contains(key) && !model[key].is_null() &&
            !(model[key].is_string() && model[key].get_ref<const std::string&>().empty()))
            throw root.child(key).unsupported("a non-empty value");
    }
    if (model.contains("dropout") && !model["dropout"].is_null()) {
        const auto& d = model["dropout"];
        if (!d.is_number() || d.get<double>() != 0.0)
            throw root.child("dropout").unsupported("BPE dropout (sampling)");
    }
    byte_fallback_ = opt_bool(model, "byte_fallback", false, root);
    fuse_unk_ = opt_bool(model, "fuse_unk", false, root);
    ignore_merges_ = opt_bool(model, "ignore_merges", false, root);

    const auto vpath = root.child("vocab");
    const auto& vocab = require(model, "vocab", vpath);
    if (!vocab.is_object()) throw vpath.error("must be an object of token -> id");
    vocab_.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const auto p = vpath.child(it.key());
        if (!it->is_number_integer()) throw p.error("id must be an integer");
        const auto id = it->get<int64_t>();
        if (id < 0 || id > kMaxTokenId) throw p.error("id " + std::to_string(id) + " is out of range");
        vocab_.emplace(it.key(), static_cast<int32_t>(id));
    }

    const auto mpath = root.child("merges");
    const auto& merges = require(model, "merges", mpath);
    if (!merges.is_array()) throw mpath.error("must be an array");
    uint64_t cap = 16;
    while (cap < merges.size() * 2) cap <<= 1;
    merge_table_.assign(cap, Slot{});
    merge_mask_ = cap - 1;
    std::string a, b;
    for (size_t r = 0; r < merges.size(); ++r) {
        const auto& m = merges[r];
        const auto p = mpath.index(r);
        if (m.is_string()) {  // "a b" (tokenizers < 0.20)
            const auto& s = m.get_ref<const std::string&>();
            const size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                throw p.error("'" + s + "' is not two tokens separated by one space");
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            a = m[0].get<std::string>();
            b = m[1].get<std::string>();
        } else {
            throw p.error("must be \"a b\" or [\"a\", \"b\"]");
        }
        const int32_t ia = find(a), ib = find(b), im = find(a + b);
        if (ia < 0 || ib < 0 || im < 0)
            throw p.error("merge '" + a + "' + '" + b + "' uses a token missing from model.vocab");
        const uint64_t key = pair_key(ia, ib);
        uint64_t i = slot_of(key, merge_mask_);
        while (merge_table_[i].key != ~0ull && merge_table_[i].key != key) i = (i + 1) & merge_mask_;
        if (merge_table_[i].key == ~0ull) merge_table_[i] = {key, Merge{static_cast<int32_t>(r), im}};  // first rank wins
    }

    for (int c = 0; c < 128; ++c) ascii_ids_[c] = find(std::string(1, static_cast<char>(c)));
    byte_ids_.assign(256, -1);
    char name[8];
    for (int v = 0; v < 256; ++v) {
        std::snprintf(name, sizeof name, "<0x%02X>", v);
        byte_ids_[v] = find(name);
    }
    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
        const auto up = root.child("unk_token");
        if (!model["unk_token"].is_string()) throw up.error("must be a string");
        const auto& unk = model["unk_token"].get_ref<const std::string&>();
        unk_id_ = find(unk);
        if (unk_id_ < 0) throw up.error("'" + unk + "' is not in model.vocab");
    }
}

int32_t BpeModel::find(std::string_view token) const {
    auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
    const uint64_t key = pair_key(a, b);
    for (uint64_t i = slot_of(key, merge_mask_);; i = (i + 1) & merge_mask_) {
        const Slot& s = merge_table_[i];
        if (s.key == key) return &s.merge;
        if (s.key == ~0ull) return nullptr;
    }
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges_) {  // Llama 3: a word that is a token is taken whole
        if (const int32_t id = find(word); id >= 0) {
            out.push_back(id);
            return;
        }
    }
    const bool cacheable = word.size() <= kCacheMaxWord;
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mu_);
        if (auto it = cache_.find(word); it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const size_t start = out.size();
    merge_word(word, out);
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mu_);
        if (cache_.size() < kCacheCapacity)
            cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + start, out.end()));
    }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
    struct Symbol {
        int32_t id;
        int32_t prev, next;
        bool alive;
    };
    thread_local std::vector<Symbol> sym;
    sym.clear();
    const auto push = [&](int32_t id) {
        const auto n = static_cast<int32_t>(sym.size());
        sym.push_back({id, n - 1, -1, true});
        if (n > 0) sym[n - 1].next = n;
    };
    bool last_unk = false;
    for (size_t i = 0; i < word.size();) {
        const auto c0 = static_cast<uint8_t>(word[i]);
        if (c0 < 0x80 && ascii_ids_[c0] >= 0) {
            push(ascii_ids_[c0]);
            ++i;
            last_unk = false;
            continue;
        }
        const size_t n = utf8_valid_len(word, i);
        const std::string_view ch = word.substr(i, n == 0 ? 1 : n);
        i += ch.size();
        if (const int32_t id = c0 < 0x80 ? -1 : find(ch); id >= 0) {
            push(id);
            last_unk = false;
            continue;
        }
        if (byte_fallback_) {
            bool all = true;
            for (char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
            if (all) {
                for (char c : ch) push(byte_ids_[static_cast<uint8_t>(c)]);
                last_unk = false;
                continue;
            }
        }
        if (unk_id_ < 0) {
            throw Error(file_ + ": '" + std::string(ch) +
                        "' is not in model.vocab and model.unk_token is not set");
        }
        if (!(fuse_unk_ && last_unk)) push(unk_id_);
        last_unk = true;
    }

    struct Cand {
        int32_t rank, pos, id;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    // Min-heap on (rank, position): the lowest-ranked merge first, leftmost on ties.
    thread_local std::vector<Cand> heap;
    heap.clear();
    const auto push_cand = [&](Cand c) {
        heap.push_back(c);
        std::push_heap(heap.begin(), heap.end(), std::greater<Cand>{});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i)
        if (const Merge* m = find_merge(sym[i].id, sym[i + 1].id)) push_cand({m->rank, i, m->id});
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<Cand>{});
        const Cand c = heap.back();
        heap.pop_back();
        Symbol& s = sym[c.pos];
        if (!s.alive || s.next < 0) continue;
        const Merge* m = find_merge(s.id, sym[s.next].id);
        if (!m || m->rank != c.rank) continue;  // stale: a neighbour changed since the push
        Symbol& right = sym[s.next];
        right.alive = false;
        s.id = c.id;
        s.next = right.next;
        if (s.next >= 0) sym[s.next].prev = c.pos;
        if (s.prev >= 0)
            if (const Merge* l = find_merge(sym[s.prev].id, s.id)) push_cand({l->rank, s.prev, l->id});
        if (s.next >= 0)
            if (const Merge* r = find_merge(s.id, sym[s.next].id)) push_cand({r->rank, c.pos, r->id});
    }
    for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace microscale::calib
