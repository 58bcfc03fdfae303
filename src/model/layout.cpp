// describe_model dispatch, config readers and the tensor-accounting builder.
#include "model/layout.h"

#include <algorithm>
#include <fstream>
#include <system_error>

#include "microscale/error.h"
#include "model/arch.h"

namespace microscale::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxConfigBytes = 16ull << 20;  // real configs are a few KiB

}  // namespace

std::string_view role_name(Role role) {
    switch (role) {
        case Role::EMBED: return "embed";
        case Role::LM_HEAD: return "lm_head";
        case Role::ATTN_Q: return "attn_q";
        case Role::ATTN_K: return "attn_k";
        case Role::ATTN_V: return "attn_v";
        case Role::ATTN_O: return "attn_o";
        case Role::ATTN_QKV: return "attn_qkv";
        case Role::MLP_GATE: return "mlp_gate";
        case Role::MLP_UP: return "mlp_up";
        case Role::MLP_DOWN: return "mlp_down";
        case Role::MLP_GATE_UP: return "mlp_gate_up";
        case Role::LINEAR_OTHER: return "linear_other";
    }
    return "unknown";
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

json load_config_json(const fs::path& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) throw Error(path.string() + ": cannot read config: " + ec.message());
    if (size > kMaxConfigBytes)
        throw Error(path.string() + ": " + std::to_string(size) + " bytes, over the " +
                    std::to_string(kMaxConfigBytes) + "-byte cap for a config file");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path.string() + ": cannot open");
    std::string text(size, '\0');
    f.read(text.data(), static_cast<std::streamsize>(size));
    if (static_cast<uint64_t>(f.gcount()) != size) throw Error(path.string() + ": short read");
    try {
        json j = json::parse(text);
        if (!j.is_object()) throw Error(path.string() + ": config must be a JSON object");
        return j;
    } catch (const json::exception& e) {
        throw Error(path.string() + ": not valid JSON: " + e.what());
    }
}

int64_t config_int(const ArchInput& in, const char* key, std::optional<int64_t> fallback,
                   int64_t min_value) {
    auto it = in.config.find(key);
    if (it == in.config.end() || it->is_null()) {
        if (fallback) return *fallback;
        throw Error(in.config_path + ": missing '" + key + "' (needed by model_type '" +
                    in.model_type + "')");
    }
    if (!it->is_number_integer())
        throw Error(in.config_path + ": '" + key + "' must be an integer, got " + it->dump());
    // Checked as signed so that a huge unsigned value cannot wrap into range.
    if (it->is_number_unsigned() && it->get<uint64_t>() > (1ull << 31))
        throw Error(in.config_path + ": '" + key + "' = " + it->dump() + " is out of range");
    const int64_t v = it->get<int64_t>();
    if (v < min_value || v >= (int64_t{1} << 31))
        throw Error(in.config_path + ": '" + key + "' = " + std::to_string(v) +
                    " is out of range (must be >= " + std::to_string(min_value) + ")");
    return v;
}

bool config_bool(const ArchInput& in, const char* key, bool fallback) {
    auto it = in.config.find(key);
    if (it == in.config.end() || it->is_null()) return fallback;
    if (!it->is_boolean())
        throw Error(in.config_path + ": '" + key + "' must be true or false, got " + it->dump());
    return it->get<bool>();
}

// ---------------------------------------------------------------------------------------------

LayoutBuilder::LayoutBuilder(const ArchInput& in, std::string_view architecture, std::string dims)
    : in_(in), dims_(std::move(dims)), claimed_(in.ckpt.tensors().size(), false) {
    layout_.model_type = in.model_type;
    layout_.architecture = std::string(architecture);
}

std::string LayoutBuilder::where() const { return in_.ckpt.dir().string(); }

size_t LayoutBuilder::position(const io::TensorRef& ref) const {
    return static_cast<size_t>(&ref - in_.ckpt.tensors().data());
}

bool LayoutBuilder::claimed(std::string_view tensor) const {
    const io::TensorRef* ref = in_.ckpt.find(tensor);
    return ref && claimed_[position(*ref)];
}

const io::TensorInfo& LayoutBuilder::claim(const std::string& tensor,
                                           const std::vector<int64_t>& shape) {
    const io::TensorRef* ref = in_.ckpt.find(tensor);
    const std::string from = " (" + layout_.architecture + " from " + in_.config_path + ": " + dims_ + ")";
    if (!ref)
        throw Error(where() + ": tensor '" + tensor + "' is missing; expected shape " +
                    shape_string(shape) + from);
    if (ref->info->shape != shape)
        throw Error(where() + ": tensor '" + tensor + "' has shape " + shape_string(ref->info->shape) +
                    ", expected " + shape_string(shape) + from);
    const size_t pos = position(*ref);
    if (claimed_[pos])  // an architecture-table bug, not a checkpoint problem
        throw Error(where() + ": tensor '" + tensor + "' claimed twice by the " +
                    layout_.architecture + " layout");
    claimed_[pos] = true;
    return *ref->info;
}

int LayoutBuilder::add_linear(const std::string& name, Role role, std::string_view module_class,
                              int layer, int64_t out, int64_t in) {
    std::string weight = name + ".weight";
    std::optional<QuantizedWeightRef> quant;
    if (in_.accept_quantized) quant = claim_quantized(name, out, in, weight);
    if (!quant) {
        const io::TensorInfo& t = claim(weight, {out, in});
        if (!dtype_is_float(t.dtype))
            throw Error(where() + ": tensor '" + weight + "' has dtype " + std::string(dtype_name(t.dtype)) +
                        "; an unquantized checkpoint (F16/BF16/F32/F64 weights) is expected");
    }
    layout_.linears.push_back({name, weight, role, std::string(module_class), layer, out, in, -1, {}, quant});
    return static_cast<int>(layout_.linears.size() - 1);
}

bool LayoutBuilder::claim_scalar(const std::string& tensor) {
    const io::TensorRef* ref = in_.ckpt.find(tensor);
    if (!ref) return false;
    if (ref->info->numel() != 1 || ref->info->dtype != DType::F32)
        throw Error(where() + ": tensor '" + tensor + "' is " + std::string(dtype_name(ref->info->dtype)) +
                    " " + shape_string(ref->info->shape) + "; a one-element F32 scale is expected");
    claim(tensor, ref->info->shape);
    return true;
}

// The export's names (spec nvfp4-modelopt.md §2.1, §3; docs/FORMATS.md compressed-tensors): the
// element tensor's dtype and the block scale's dtype tell the format apart.
std::optional<QuantizedWeightRef> LayoutBuilder::claim_quantized(const std::string& name, int64_t out,
                                                                 int64_t in, std::string& weight) {
    const io::TensorRef* plain = in_.ckpt.find(name + ".weight");
    const io::TensorRef* packed = in_.ckpt.find(name + ".weight_packed");
    const bool ct = packed != nullptr;
    const io::TensorRef* w = ct ? packed : plain;
    if (!w || (!ct && dtype_is_float(w->info->dtype))) return std::nullopt;
    weight = w->info->name;
    const DType wt = w->info->dtype;
    if (wt != DType::U8 && wt != DType::F8_E4M3)
        throw Error(where() + ": tensor '" + weight + "' has dtype " + std::string(dtype_name(wt)) +
                    "; expected a float weight, packed U8 (NVFP4/MXFP4) or F8_E4M3 (FP8/MXFP8)");
    const bool four_bit = wt == DType::U8;
    claim(weight, {out, four_bit ? in / 2 : in});
    if (four_bit && in % 2)
        throw Error(where() + ": tensor '" + weight + "': packed 4-bit weight with odd in_features " +
                    std::to_string(in));
    QuantizedWeightRef q;
    const std::string ws = name + ".weight_scale";
    const io::TensorRef* wsr = in_.ckpt.find(ws);
    if (!wsr) throw Error(where() + ": quantized weight '" + weight + "' has no '" + ws + "'");
    const DType st = wsr->info->dtype;
    const bool e8m0 = st == DType::U8 || st == DType::F8_E8M0;
    if (e8m0) {  // MX: power-of-two scale per 32, no per-tensor scale
        if (in % 32) throw Error(where() + ": '" + weight + "': MX weight with in_features % 32 != 0");
        claim(ws, {out, in / 32});
        q.format = four_bit ? Format::MXFP4 : Format::MXFP8;
        q.block_scale = ws;
    } else if (four_bit) {  // NVFP4
        if (st != DType::F8_E4M3 || in % 16)
            throw Error(where() + ": '" + ws + "' must be F8_E4M3 [" + std::to_string(out) + ", " +
                        std::to_string(in / 16) + "] for the NVFP4 weight '" + weight + "'");
        claim(ws, {out, in / 16});
        q.block_scale = ws;
        q.global_scale = name + (ct ? ".weight_global_scale" : ".weight_scale_2");
        q.inverted_global = ct;
        if (!claim_scalar(q.global_scale))
            throw Error(where() + ": NVFP4 weight '" + weight + "' has no '" + q.global_scale + "'");
        q.format = Format::W4A16_NVFP4;
    } else {  // FP8 per-tensor
        if (!claim_scalar(ws)) throw Error(where() + ": '" + ws + "' missing");
        q.global_scale = ws;
        q.format = Format::FP8;
    }
    if (claim_scalar(name + ".input_scale")) {
        q.input_scale = name + ".input_scale";
    } else if (claim_scalar(name + ".input_global_scale")) {
        q.input_scale = name + ".input_global_scale";
        q.inverted_input = true;
    }
    if (q.format == Format::W4A16_NVFP4 && !q.input_scale.empty()) q.format = Format::NVFP4;
    return q;
}

int LayoutBuilder::add_tied_linear(const std::string& name, Role role, std::string_view module_class,
                                   int layer, int64_t out, int64_t in) {
    layout_.linears.push_back({name, "", role, std::string(module_class), layer, out, in, -1, {}, {}});
    return static_cast<int>(layout_.linears.size() - 1);
}

void LayoutBuilder::add_passthrough(const std::string& tensor, const std::vector<int64_t>& shape) {
    claim(tensor, shape);
    layout_.passthrough.push_back(tensor);
}

void LayoutBuilder::add_passthrough_any(const io::TensorInfo& t) {
    claim(t.name, t.shape);
    layout_.passthrough.push_back(t.name);
}

void LayoutBuilder::add_norm(const std::string& tensor, NormRole role, int layer, int64_t dim) {
    add_passthrough(tensor, {dim});
    layout_.norms.push_back(NormTensor{tensor, role, layer, dim});
}

void LayoutBuilder::add_bias(int linear) {
    LinearModule& m = layout_.linears.at(static_cast<size_t>(linear));
    const std::string bias = m.name + ".bias";
    add_passthrough(bias, {m.out_features});
    layout_.linears.at(static_cast<size_t>(linear)).bias = bias;
}

int LayoutBuilder::add_group(std::string kind, std::vector<int> members) {
    const int g = static_cast<int>(layout_.groups.size());
    for (int m : members) layout_.linears.at(static_cast<size_t>(m)).group = g;
    layout_.groups.push_back({std::move(kind), std::move(members)});
    return g;
}

void LayoutBuilder::add_attention(std::string name, std::string_view module_class, int layer,
                                  int k_proj, int v_proj) {
    std::string k_scale, v_scale;
    // KV-cache scales live on k_proj / v_proj in a ModelOpt export (spec §3.1).
    if (in_.accept_quantized && k_proj >= 0 && v_proj >= 0) {
        k_scale = layout_.linears.at(static_cast<size_t>(k_proj)).name + ".k_scale";
        v_scale = layout_.linears.at(static_cast<size_t>(v_proj)).name + ".v_scale";
        if (!claim_scalar(k_scale)) k_scale.clear();
        if (!claim_scalar(v_scale)) v_scale.clear();
    }
    layout_.attentions.push_back({std::move(name), std::string(module_class), layer, k_proj, v_proj,
                                  std::move(k_scale), std::move(v_scale)});
}

ModelLayout LayoutBuilder::finish(const std::function<bool(const io::TensorInfo&)>& accept) {
    const auto& all = in_.ckpt.tensors();
    for (size_t i = 0; i < all.size(); ++i) {
        if (claimed_[i]) continue;
        const io::TensorInfo& t = *all[i].info;
        if (!accept(t))
            throw Error(where() + ": unexpected tensor '" + t.name + "' " + shape_string(t.shape) +
                        ": not part of a " + layout_.architecture + " model as " + in_.config_path +
                        " describes it (" + dims_ + ")");
        claimed_[i] = true;
        layout_.passthrough.push_back(t.name);
    }
    // Checkpoint order makes the copy pass sequential in the files.
    std::vector<std::pair<size_t, std::string>> order;
    order.reserve(layout_.passthrough.size());
    for (auto& n : layout_.passthrough) order.emplace_back(position(*in_.ckpt.find(n)), std::move(n));
    std::sort(order.begin(), order.end());
    layout_.passthrough.clear();
    for (auto& [pos, n] : order) layout_.passthrough.push_back(std::move(n));
    return std::move(layout_);
}

// ---------------------------------------------------------------------------------------------

ModelLayout describe_model(const json& config, const io::Checkpoint& ckpt,
                           const std::string& config_path, bool accept_quantized) {
    if (!config.is_object()) throw Error(config_path + ": config must be a JSON object");
    auto mt = config.find("model_type");
    if (mt == config.end() || !mt->is_string() || mt->get_ref<const std::string&>().empty())
        throw Error(config_path + ": missing or non-string 'model_type'; cannot tell the architecture of " +
                    ckpt.dir().string());
    const ArchInput in{config, ckpt, config_path, mt->get<std::string>(), accept_quantized};
    if (const ArchEntry* e = find_arch(in.model_type)) return e->build(in);
    return build_generic(in);
}

}  // namespace microscale::model
