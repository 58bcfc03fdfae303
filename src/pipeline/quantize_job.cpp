#include "pipeline/quantize_job.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "core/thread_pool.h"
#include "cuda/quantize_cuda.h"
#include "export/compressed_tensors.h"
#include "export/modelopt_config.h"
#include "export/verify.h"
#include "format/fp8.h"
#include "format/nvfp4_block.h"
#include "io/checkpoint.h"
#include "microscale/error.h"
#include "model/layout.h"
#include "pipeline/async_writer.h"
#include "pipeline/buffer_recycler.h"
#include "pipeline/input_pager.h"
#include "pipeline/output_dir.h"
#include "pipeline/reconstruction.h"
#include "recipe/recipe.h"

namespace microscale::pipeline {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Output bytes allowed in flight between the quantizer and the writer thread.
constexpr uint64_t kWriteQueueBytes = 256ull << 20;
// Written-out buffers kept for reuse: a few tensors' worth, so steady state allocates nothing.
constexpr uint64_t kRecycledBytes = 64ull << 20;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string layer_kind(model::Role role) {
    switch (role) {
        case model::Role::ATTN_Q: case model::Role::ATTN_K: case model::Role::ATTN_V: case model::Role::ATTN_O:
        case model::Role::ATTN_QKV: return "attention";
        case model::Role::MLP_GATE: case model::Role::MLP_UP: case model::Role::MLP_DOWN: case model::Role::MLP_GATE_UP:
            return "mlp";
        case model::Role::LM_HEAD: return "lm_head";
        case model::Role::EMBED: return "embedding";
        default: return "other";
    }
}

// The tensors a quantized linear exports, in ModelOpt's names and dtypes (spec §2-3).
std::vector<io::TensorDecl> output_decls(const model::LinearModule& m, Format f, bool has_input_scale) {
    const int64_t out = m.out_features, in = m.in_features;
    std::vector<io::TensorDecl> d;
    switch (f) {
        case Format::NVFP4: case Format::W4A16_NVFP4:
            d.push_back({m.name + ".weight", DType::U8, {out, in / 2}});
            d.push_back({m.name + ".weight_scale", DType::F8_E4M3, {out, in / format::kNvfp4Block}});
            d.push_back({m.name + ".weight_scale_2", DType::F32, {}});
            break;
        case Format::FP8:
            d.push_back({m.name + ".weight", DType::F8_E4M3, {out, in}});
            d.push_back({m.name + ".weight_scale", DType::F32, {}});
            break;
        case Format::MXFP4:
            d.push_back({m.name + ".weight", DType::U8, {out, in / 2}});
            d.push_back({m.name + ".weight_scale", DType::U8, {out, in / 32}});
            break;
        case Format::MXFP8:
            d.push_back({m.name + ".weight", DType::F8_E4M3, {out, in}});
            d.push_back({m.name + ".weight_scale", DType::U8, {out, in / 32}});
            break;
        default: break;
    }
    if (has_input_scale) d.push_back({m.name + ".input_scale", DType::F32, {}});
    return d;
}

std::vector<uint8_t> scalar_vec(float v) {
    std::vector<uint8_t> b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
}

// Non-weight files travel with the checkpoint (tokenizer, generation config, chat template...).
void copy_side_files(const fs::path& from, const fs::path& to) {
    for (const auto& e : fs::directory_iterator(from)) {
        if (!e.is_regular_file()) continue;
        const std::string n = e.path().filename().string();
        if (n == "config.json" || n == "hf_quant_config.json" || n == "model.safetensors.index.json" ||
            e.path().extension() == ".safetensors" || n.rfind('.', 0) == 0)
            continue;
        fs::copy_file(e.path(), to / n, fs::copy_options::overwrite_existing);
    }
}

// Re-open what was written with our own reader: exactly the declared tensors, with their dtypes
// and shapes. The content checks (scale codes, fused groups, JSON vs tensors) are verify_export's.
void verify_written(const fs::path& dir, const std::vector<io::TensorDecl>& decls) {
    const io::Checkpoint ck = io::Checkpoint::open(dir);
    if (ck.tensors().size() != decls.size())
        throw Error(fmt::format("verify {}: {} tensors written, {} expected", dir.string(), ck.tensors().size(), decls.size()));
    for (const io::TensorDecl& d : decls) {
        const io::TensorRef* t = ck.find(d.name);
        if (!t || t->info->dtype != d.dtype || t->info->shape != d.shape)
            throw Error(fmt::format("verify {}: tensor {} missing or with the wrong dtype/shape", dir.string(), d.name));
    }
}

void write_json(const fs::path& p, const nlohmann::ordered_json& j) {
    std::ofstream f(p);
    f << j.dump(4) << "\n";
    if (!f) throw Error(fmt::format("cannot write {}", p.string()));
}

}  // namespace

QuantizeReport run_quantize(const QuantizeOptions& opts, const JobCallbacks& callbacks) {
    const auto t_start = Clock::now();
    QuantizeReport rep;
    rep.dry_run = opts.dry_run;
    if (!fs::is_directory(opts.model_dir))
        throw Error(fmt::format("--model {}: not a directory", opts.model_dir.string()));
    const fs::path config_path = opts.model_dir / "config.json";
    const nlohmann::json config = model::load_config_json(config_path);
    const io::Checkpoint ckpt = io::Checkpoint::open(opts.model_dir);
    const model::ModelLayout layout = model::describe_model(config, ckpt, config_path.string());
    const recipe::Recipe recipe = recipe::load_recipe(opts.recipe);
    // The output is checked (and its temporary created) before any work is shown or done.
    std::optional<OutputDir> out;
    if (!opts.dry_run) out.emplace(opts.output_dir, opts.force, opts.model_dir);
    const Plan plan = build_plan(recipe, layout, opts.plan);
    rep.plan_text = describe_plan(plan, layout);
    rep.notes = plan.notes;
    rep.bpe_without_lm_head = planned_effective_bits(plan, layout, false);
    rep.bpe_with_lm_head = planned_effective_bits(plan, layout, true);
    const auto dialect = exporter::export_dialect_from_name(opts.export_format);
    if (!dialect)
        throw Error(fmt::format("--export-format {}: expected modelopt or compressed-tensors", opts.export_format));
    const bool ct = *dialect == exporter::ExportDialect::COMPRESSED_TENSORS;
    // The compressed-tensors config only needs the plan: build it now so that a plan it cannot
    // express fails before any work.
    nlohmann::ordered_json ct_config;
    if (ct) {
        std::vector<exporter::CtLayer> layers;
        for (size_t i = 0; i < layout.linears.size(); ++i) {
            const model::LinearModule& m = layout.linears[i];
            const LinearPlan& lp = plan.linears[i];
            const bool embed = m.role == model::Role::EMBED || m.module_class == "nn.Embedding";
            layers.push_back({m.name, lp.format, !embed, lp.input_constant_amax.has_value() || lp.input_calibrated,
                              lp.format ? exporter::ct_weight_observer(*lp.format, lp.nvfp4, !lp.fp8_multipliers.empty())
                                        : std::string()});
        }
        ct_config = exporter::build_ct_quantization_config(layers, plan.kv_cache_quant_algo);
    }
    if (callbacks.on_plan) callbacks.on_plan(rep.plan_text, rep.notes);
    if (opts.dry_run) return rep;
    CalibrationOptions copts = opts.calibration;
    if (copts.threads == 0) copts.threads = opts.threads;
    const ActivationScales act = resolve_activation_scales(copts, opts.model_dir, plan, layout, callbacks.on_log);
    for (const std::string& n : act.notes) rep.notes.push_back(n);
    if (!act.gptq_report.empty()) {
        double before = 0, after = 0;
        int lowered = 0;
        for (const GptqLayerReport& g : act.gptq_report) {
            before += g.objective_rtn;
            after += g.objective_gptq;
            lowered += g.objective_gptq < g.objective_rtn;
            if (callbacks.on_log)
                callbacks.on_log(fmt::format("gptq {:<48} objective {:.4e} -> {:.4e} ({:+.1f}%)", g.module, g.objective_rtn,
                                             g.objective_gptq, 100.0 * (g.objective_gptq / g.objective_rtn - 1.0)));
        }
        rep.notes.push_back(fmt::format("gptq: {} linears, layer objective sum (w-q)^T H (w-q) {:.4e} -> {:.4e} "
                                        "({:+.1f}%), lowered on {} of {}",
                                        act.gptq_report.size(), before, after, 100.0 * (after / before - 1.0), lowered,
                                        act.gptq_report.size()));
    }
    // k_scale / v_scale are written next to their projection, e.g. <attn>.k_proj.k_scale.
    std::unordered_map<size_t, std::pair<std::string, float>> kv_scale_of_linear;
    for (const KvPlan& kv : plan.kv) {
        if (kv.constant_amax) continue;
        const model::AttentionModule& a = layout.attentions[static_cast<size_t>(kv.attention)];
        if (a.k_proj < 0 || a.v_proj < 0)
            throw Error(fmt::format("{}: KV-cache scales need separate k_proj/v_proj modules", a.name));
        if (ct) throw Error("--export-format compressed-tensors: calibrated KV-cache scales are not supported yet");
        kv_scale_of_linear[static_cast<size_t>(a.k_proj)] = {a.name + ".k_proj.k_scale",
                                                             act.k_amax[static_cast<size_t>(kv.attention)] * format::kRecip448};
        kv_scale_of_linear[static_cast<size_t>(a.v_proj)] = {a.name + ".v_proj.v_scale",
                                                             act.v_amax[static_cast<size_t>(kv.attention)] * format::kRecip448};
    }
    // The input_scale a linear exports: constant_amax or the calibrated amax times RN(1/(6*448))
    // for NVFP4 or RN(1/448) for FP8 (spec §2.2, §3.1: GPU division by a constant).
    auto input_scale_of = [&](size_t i) -> std::optional<float> {
        const LinearPlan& lp = plan.linears[i];
        std::optional<float> amax;
        if (lp.input_constant_amax) amax = static_cast<float>(*lp.input_constant_amax);
        else if (act.input_amax[i]) amax = *act.input_amax[i];
        if (!amax) return std::nullopt;
        return *lp.format == Format::FP8 ? *amax * format::kRecip448 : *amax * format::kRecip2688;
    };

    // Which linear owns each on-disk weight.
    std::unordered_map<std::string, size_t> linear_of_weight;
    for (size_t i = 0; i < layout.linears.size(); ++i)
        if (!layout.linears[i].weight.empty()) linear_of_weight[layout.linears[i].weight] = i;

    // Output tensors in checkpoint order, each quantized weight replaced by its family.
    std::vector<io::TensorDecl> decls;
    for (const io::TensorRef& t : ckpt.tensors()) {
        auto it = linear_of_weight.find(t.info->name);
        if (it != linear_of_weight.end() && plan.linears[it->second].format) {
            const LinearPlan& lp = plan.linears[it->second];
            const model::LinearModule& m = layout.linears[it->second];
            const bool has_input = input_scale_of(it->second).has_value();
            for (auto& d : ct ? exporter::quantized_linear_decls(*dialect, m.name, *lp.format, m.out_features,
                                                                 m.in_features, has_input)
                              : output_decls(m, *lp.format, has_input))
                decls.push_back(std::move(d));
            if (auto kv = kv_scale_of_linear.find(it->second); kv != kv_scale_of_linear.end())
                decls.push_back({kv->second.first, DType::F32, {}});
        } else {
            decls.push_back({t.info->name, t.info->dtype, t.info->shape});
        }
    }

    InterruptGuard guard;
    core::ThreadPool pool(opts.threads);
    std::map<int, float> group_amax;              // fused group -> shared global amax (max over members)
    std::unordered_map<std::string, float> amax_of;  // weights whose amax the group pass already read
    {
        io::ShardedWriter writer(out->temp(), decls, {{"format", "pt"}}, opts.max_shard_bytes, opts.write_mode);
        BufferRecycler buffers(kRecycledBytes);  // outlives aw, whose pending items give buffers back
        AsyncWriter aw(writer, kWriteQueueBytes);
        InputPager pager;
        const auto& tensors = ckpt.tensors();
        // Maps in, ahead of use, the next tensor to quantize and, when it opens a fused group, the
        // members the group's amax pass reads with it. (Copies are read by the writer thread.)
        std::unordered_set<const io::TensorInfo*> populated;
        auto populate = [&](const io::TensorRef& t) {
            if (populated.insert(t.info).second) pager.populate(t);
        };
        auto populate_ahead = [&](size_t ti) {
            if (ti >= tensors.size()) return;
            auto it = linear_of_weight.find(tensors[ti].info->name);
            if (it == linear_of_weight.end() || !plan.linears[it->second].format) return;
            populate(tensors[ti]);
            const int g = layout.linears[it->second].group;
            if (g < 0) return;
            if (group_amax.count(g)) return;
            for (int member : layout.groups[static_cast<size_t>(g)].members)
                populate(ckpt.at(layout.linears[static_cast<size_t>(member)].weight));
        };
        populate_ahead(0);
        // --device cuda: the next weight's upload runs while this one is quantized (a hint to
        // cuda::quantize_weight); whatever happens, no upload may outlive the loop's mappings.
        struct WaitPrefetch {
            bool on;
            ~WaitPrefetch() {
                if (on) cuda::wait_prefetch();
            }
        } wait_prefetch{opts.backend == format::Backend::CUDA};
        auto next_gpu_weight = [&](size_t ti) -> std::optional<format::WeightView> {
            if (opts.backend != format::Backend::CUDA || ti >= tensors.size()) return std::nullopt;
            auto it = linear_of_weight.find(tensors[ti].info->name);
            if (it == linear_of_weight.end() || !plan.linears[it->second].format) return std::nullopt;
            if (act.gptq.count(static_cast<int>(it->second))) return std::nullopt;
            const model::LinearModule& m = layout.linears[it->second];
            return format::WeightView{ckpt.bytes(tensors[ti]).data(), tensors[ti].info->dtype, m.out_features,
                                      m.in_features, tensors[ti].info->name};
        };
        if (callbacks.on_start) {
            uint64_t total = 0;
            for (const io::TensorRef& t : tensors) total += t.info->nbytes();
            callbacks.on_start(tensors.size(), total);
        }
        for (size_t ti = 0; ti < tensors.size(); ++ti) {
            if (interrupted()) throw Error("interrupted; nothing was written to " + opts.output_dir.string());
            const io::TensorRef& t = tensors[ti];
            populate_ahead(ti + 1);
            const auto t0 = Clock::now();
            TensorReport tr;
            tr.name = t.info->name;
            tr.elements = static_cast<int64_t>(t.info->numel());
            tr.input_bytes = t.info->nbytes();
            tr.input_dtype = std::string(dtype_name(t.info->dtype));
            tr.format = "-";
            auto it = linear_of_weight.find(t.info->name);
            const LinearPlan* lp = it != linear_of_weight.end() ? &plan.linears[it->second] : nullptr;
            tr.kind = lp ? layer_kind(layout.linears[it->second].role) : "other";
            if (!lp || !lp->format) {
                tr.algorithm = lp && !lp->skipped.empty() ? "skipped: " + lp->skipped : "copy";
                // Written straight from the mapping; its pages are released once written.
                aw.submit_view(t.info->name, ckpt.bytes(t), [file = t.file, info = t.info] { file->release(*info); });
                tr.output_bytes = t.info->nbytes();
            } else {
                const model::LinearModule& m = layout.linears[it->second];
                const format::WeightView w{ckpt.bytes(t).data(), t.info->dtype, m.out_features, m.in_features,
                                           t.info->name};
                format::WeightQuantSpec spec;
                spec.format = *lp->format;
                spec.nvfp4 = lp->nvfp4;
                if (m.group >= 0 && (*lp->format == Format::NVFP4 || *lp->format == Format::W4A16_NVFP4)) {
                    auto g = group_amax.find(m.group);
                    if (g == group_amax.end()) {
                        float a = 0.0f;
                        for (int member : layout.groups[static_cast<size_t>(m.group)].members) {
                            const model::LinearModule& mm = layout.linears[static_cast<size_t>(member)];
                            const io::TensorRef& mt = ckpt.at(mm.weight);
                            const format::WeightView mw{ckpt.bytes(mt).data(), mt.info->dtype, mm.out_features,
                                                        mm.in_features, mm.weight};
                            const float ma = format::tensor_amax(mw, opts.backend, &pool);
                            amax_of[mm.weight] = ma;
                            a = std::max(a, ma);
                        }
                        g = group_amax.emplace(m.group, a).first;
                    }
                    spec.nvfp4.global_amax = g->second;
                    spec.known_amax = amax_of.at(m.weight);  // validated finite by that pass
                }
                if (*lp->format == Format::FP8 && !lp->fp8_multipliers.empty())
                    spec.fp8_amax = format::fp8_search_amax(w, format::tensor_amax(w, opts.backend, &pool),
                                                            lp->fp8_multipliers);
                const format::QuantizedSizes n = format::quantized_sizes(spec.format, m.out_features, m.in_features);
                const auto gq = act.gptq.find(static_cast<int>(it->second));
                format::QuantizedWeight owned;  // GPTQ'd during calibration (the search's codes) or from the GPU
                std::shared_ptr<RecycledBuffer> data, scales;  // otherwise quantized straight into these
                ReconstructionError err;
                float global_scale = 0.0f;
                if (gq == act.gptq.end() && opts.backend != format::Backend::CUDA) {
                    data = std::make_shared<RecycledBuffer>(buffers.take(n.data));
                    if (n.block_scales) scales = std::make_shared<RecycledBuffer>(buffers.take(n.block_scales));
                    SampledError sampled(w, kErrorRows);
                    global_scale = format::quantize_weight_to(
                        w, spec, opts.backend, &pool, data->get(), scales ? scales->get() : nullptr,
                        [&](const format::QuantizedView& v, int64_t r0, int64_t r1) { sampled.measure(v, r0, r1); })
                        .global_scale;
                    err = sampled.result();
                } else {
                    if (gq != act.gptq.end()) {
                        owned = gq->second;
                    } else {
                        const std::optional<format::WeightView> next = next_gpu_weight(ti + 1);
                        owned = format::quantize_weight(w, spec, opts.backend, &pool, next ? &*next : nullptr);
                    }
                    err = sampled_relative_mse(w, owned, kErrorRows, &pool);
                    global_scale = owned.global_scale;
                }
                tr.rel_mse = err.rel_mse;
                tr.sampled_rows = err.rows;
                pager.release(t);  // the input is no longer needed
                // Same bytes in both dialects; names and the NVFP4 reciprocal scales differ.
                const Format f = *lp->format;
                const auto leaf = [&](exporter::QuantPart p) {
                    return m.name + "." + std::string(exporter::tensor_leaf(*dialect, f, p));
                };
                const auto stored = [&](exporter::QuantPart p, float v) { return exporter::stored_scale(*dialect, f, p, v); };
                tr.format = std::string(format_info(*lp->format).name);
                tr.algorithm = lp->algorithm;
                tr.output_bytes = n.data + n.block_scales + (format_info(*lp->format).per_tensor_scale ? 4 : 0);
                // A recycled buffer is written from in place and goes back once the writer is done.
                const auto put = [&](std::string name, const std::shared_ptr<RecycledBuffer>& b, size_t bytes,
                                     std::vector<uint8_t>& v) {
                    if (b) aw.submit_held(std::move(name), {b->get(), bytes}, [&buffers, b] { buffers.give_back(std::move(*b)); });
                    else aw.submit(std::move(name), std::move(v));
                };
                put(leaf(exporter::QuantPart::WEIGHT), data, n.data, owned.data);
                if (n.block_scales) put(leaf(exporter::QuantPart::WEIGHT_SCALE), scales, n.block_scales, owned.block_scales);
                if (f == Format::NVFP4 || f == Format::W4A16_NVFP4)
                    aw.submit(leaf(exporter::QuantPart::GLOBAL_SCALE),
                              scalar_vec(stored(exporter::QuantPart::GLOBAL_SCALE, global_scale)));
                if (f == Format::FP8) aw.submit(leaf(exporter::QuantPart::WEIGHT_SCALE), scalar_vec(global_scale));
                if (const auto is = input_scale_of(it->second))
                    aw.submit(leaf(exporter::QuantPart::INPUT_SCALE), scalar_vec(stored(exporter::QuantPart::INPUT_SCALE, *is)));
                if (auto kv = kv_scale_of_linear.find(it->second); kv != kv_scale_of_linear.end())
                    aw.submit(kv->second.first, scalar_vec(kv->second.second));
            }
            tr.seconds = since(t0);
            rep.quantize_seconds += tr.seconds;
            rep.input_bytes += tr.input_bytes;
            rep.output_bytes += tr.output_bytes;
            if (callbacks.on_tensor) callbacks.on_tensor(ti, tensors.size(), tr);
            rep.tensors.push_back(std::move(tr));
        }
        const auto t_drain = Clock::now();
        aw.drain();
        rep.write_wait_seconds = since(t_drain);
        const auto t_commit = Clock::now();
        writer.commit();
        rep.commit_seconds = since(t_commit);
    }

    // JSON: ModelOpt writes hf_quant_config.json and config.json["quantization_config"] (spec
    // §4.2-4.3); compressed-tensors only the latter (ecosystem §1.6).
    nlohmann::ordered_json cfg = nlohmann::ordered_json::parse(std::ifstream(config_path));
    if (ct) {
        cfg["quantization_config"] = ct_config;
    } else {
        std::vector<exporter::LayerQuant> layers;
        for (size_t i = 0; i < layout.linears.size(); ++i) layers.push_back({layout.linears[i].name, plan.linears[i].format});
        const auto hf_quant = exporter::build_hf_quant_config(layers, plan.kv_cache_quant_algo);
        write_json(out->temp() / "hf_quant_config.json", hf_quant);
        cfg["quantization_config"] = exporter::build_quantization_config(hf_quant);
    }
    write_json(out->temp() / "config.json", cfg);
    copy_side_files(opts.model_dir, out->temp());

    if (opts.verify) {
        const auto t_verify = Clock::now();
        verify_written(out->temp(), decls);
        rep.notes.push_back(exporter::verify_summary(exporter::verify_export(out->temp(), &pool)));
        rep.verify_seconds = since(t_verify);
    }
    out->commit();
    rep.output = out->final_path();
    rep.seconds = since(t_start);
    return rep;
}

}  // namespace microscale::pipeline
