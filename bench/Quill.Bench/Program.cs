// Benchmarks that print one JSON line per figure with a ratio to a peer measured in the same run.
// Usage: dotnet run -c Release --project bench/Quill.Bench -- NAME [options]
Console.Error.WriteLine("usage: Quill.Bench <gemm|train|...> [options]");
return 2;
