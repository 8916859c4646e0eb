// Throughput of the frame codec on its hot paths: StreamData frames of several sizes and Ack
// frames.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "wire/codec.hpp"
#include "wire/frame.hpp"

namespace {

using namespace tether::wire;

std::vector<std::byte> make_payload(std::size_t size) {
  std::vector<std::byte> payload(size);
  for (std::size_t index = 0; index < size; ++index) {
    payload[index] = static_cast<std::byte>(index * 131 + 7);
  }
  return payload;
}

// A mid-stream frame: a client stream id and an offset deep enough to need an 8-byte varint.
StreamData make_stream(const std::vector<std::byte>& payload) {
  return StreamData{5, std::uint64_t{3} << 30, false, false, 0, payload};
}

Ack make_ack(std::size_t entries) {
  Ack ack;
  for (std::size_t index = 0; index < entries; ++index) {
    const std::uint64_t received = (std::uint64_t{1} << 20) + index * 4096;
    ack.entries.push_back(AckEntry{index * 2 + 1, received, received + (std::uint64_t{1} << 18)});
  }
  return ack;
}

std::vector<std::byte> encode(const Frame& frame) {
  std::vector<std::byte> out;
  encode_frame(frame, out);
  return out;
}

void BM_EncodeStreamData(benchmark::State& state) {
  const auto payload = make_payload(static_cast<std::size_t>(state.range(0)));
  const Frame frame = make_stream(payload);
  std::vector<std::byte> out;
  out.reserve(payload.size() + kMaxFrameHeaderSize + 32);
  for (auto _ : state) {
    out.clear();
    encode_frame(frame, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_EncodeStreamData)->Arg(64)->Arg(1 << 10)->Arg(16 << 10)->Arg(64 << 10);

void BM_DecodeStreamData(benchmark::State& state) {
  const auto payload = make_payload(static_cast<std::size_t>(state.range(0)));
  const auto encoding = encode(make_stream(payload));
  for (auto _ : state) {
    auto result = decode_frame(encoding);
    benchmark::DoNotOptimize(result);
    if (!result || !result->has_value()) {
      state.SkipWithError("decode failed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_DecodeStreamData)->Arg(64)->Arg(1 << 10)->Arg(16 << 10)->Arg(64 << 10);

void BM_EncodeAck(benchmark::State& state) {
  const Frame frame = make_ack(static_cast<std::size_t>(state.range(0)));
  const std::size_t size = encode(frame).size();
  std::vector<std::byte> out;
  out.reserve(size);
  for (auto _ : state) {
    out.clear();
    encode_frame(frame, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_EncodeAck)->Arg(1)->Arg(64);

void BM_DecodeAck(benchmark::State& state) {
  const auto encoding = encode(make_ack(static_cast<std::size_t>(state.range(0))));
  for (auto _ : state) {
    auto result = decode_frame(encoding);
    benchmark::DoNotOptimize(result);
    if (!result || !result->has_value()) {
      state.SkipWithError("decode failed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * encoding.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_DecodeAck)->Arg(1)->Arg(64);

}  // namespace
