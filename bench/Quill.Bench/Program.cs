// Benchmarks that print one JSON line per figure with a ratio to a peer measured in the same run.
// Usage: dotnet run -c Release --project bench/Quill.Bench -- NAME [options]
using Quill.Benchmarks;

if (args.Length > 0 && args[0] == "gemm") return GemmBenchmark.Run(args[1..], Console.Out);
if (args.Length > 0 && args[0] == "quantize") return QuantizeBenchmark.Run(args[1..], Console.Out);
Console.Error.WriteLine("usage: Quill.Bench <gemm|train|...> [options]");
return 2;
