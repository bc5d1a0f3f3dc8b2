// The training loop: resume equality, non-finite input and loss, recipes.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include <sae/train.hpp>

#include "temp_dir.hpp"

using sae_test::TempDir;

namespace {

namespace fs = std::filesystem;


sae::Batch<double> synthetic_rows(sae::Index rows, std::uint64_t seed) {
  sae::SyntheticSuperposition<double> data(16, 32, 3.0, seed);
  return data.sample(rows);
}

// A configuration that exercises every moving part in a few steps: scaling,
// geometric-median b_dec, warm-ups, decay, clipping, the constraint and resampling.
sae::TrainingConfig busy_config(long long steps) {
  sae::TrainingConfig c = sae::make_recipe(sae::Recipe::Standard, steps);
  c.batch_size = 32;
  c.lr_warmup_steps = 3;
  c.l1_warmup_steps = 4;
  c.lr_decay_fraction = 0.3;
  c.max_grad_norm = 0.5;
  c.resample_every_steps = 5;
  c.dead_window_tokens = 32;  // a whole batch without firing
  c.l1_coefficient = 0.5;     // strong and fast enough that some latents die within the run
  c.learning_rate = 0.05;
  c.data_sample_rows = 100;
  return c;
}

template <typename Params>
bool identical(const Params& a, const Params& b) {
  return a.W_enc == b.W_enc && a.b_enc == b.b_enc && a.W_dec == b.W_dec && a.b_dec == b.b_dec;
}

}  // namespace

TEST_CASE("a resumed run repeats the uninterrupted run bit for bit", "[trainer][checkpoint]") {
  const TempDir dir("sae_test_trainer");
  const auto rows = synthetic_rows(500, 1);
  const long long steps = 24;

  sae::SparseAutoEncoder<double> straight(16, 48);
  sae::InMemorySource<double> straight_data(rows, 9);
  sae::Trainer<double> straight_trainer(straight, straight_data, busy_config(steps), 5);
  sae::Index resampled = 0;
  straight_trainer.run([&](const sae::StepReport& r) { resampled += r.resampled_latents; });
  CHECK(resampled > 0);  // the run exercises resampling (and so the trainer's RNG) across the resume

  // The same run, stopped after 11 steps and continued by new objects.
  {
    sae::SparseAutoEncoder<double> first(16, 48);
    sae::InMemorySource<double> data(rows, 9);
    sae::Trainer<double> trainer(first, data, busy_config(steps), 5);
    for (int i = 0; i < 11; ++i) trainer.step();
    trainer.save_checkpoint(dir.file("ckpt"));
  }
  sae::SparseAutoEncoder<double> resumed(16, 48);
  sae::InMemorySource<double> data(rows, 12345);  // another seed: the checkpoint carries the stream
  sae::Trainer<double> trainer(resumed, data, busy_config(steps), 777);
  trainer.load_checkpoint(dir.file("ckpt"));
  CHECK(trainer.steps_done() == 11);
  trainer.run();

  CHECK(trainer.steps_done() == steps);
  CHECK(identical(resumed.params(), straight.params()));
  CHECK(trainer.input_scale() == straight_trainer.input_scale());
  CHECK(trainer.optimizer().first_moments()[2].matrix() == straight_trainer.optimizer().first_moments()[2].matrix());
  CHECK(trainer.dead_latents().tokens_since_fired() == straight_trainer.dead_latents().tokens_since_fired());
}

TEST_CASE("the standard recipe keeps decoder rows unit norm; april leaves them free", "[trainer]") {
  const auto rows = synthetic_rows(400, 2);
  sae::SparseAutoEncoder<double> model(16, 48);
  sae::InMemorySource<double> data(rows, 1);
  sae::Trainer<double> trainer(model, data, busy_config(12), 3);
  trainer.run();
  CHECK((model.params().W_dec.rowwise().norm().array() - 1.0).abs().maxCoeff() < 1e-12);

  sae::SparseAutoEncoder<double> april(16, 48);
  sae::InMemorySource<double> april_data(rows, 1);
  auto config = sae::make_recipe(sae::Recipe::April, 12);
  config.batch_size = 32;
  config.learning_rate = 1e-2;
  sae::Trainer<double> april_trainer(april, april_data, config, 3);
  CHECK(april.params().W_dec.row(0).norm() == Approx(0.1).epsilon(1e-12));  // the April init
  double last_norm = 0;
  april_trainer.run([&](const sae::StepReport& r) {
    CHECK(r.gradient_norm >= 0);
    CHECK(r.learning_rate <= 1e-2);
    last_norm = r.gradient_norm;
  });
  CHECK(last_norm > 0);
  CHECK(std::abs(april.params().W_dec.row(0).norm() - 0.1) > 1e-6);  // unconstrained: rows moved
}

TEST_CASE("the exported model works on raw activations", "[trainer]") {
  const auto rows = synthetic_rows(300, 3);
  sae::SparseAutoEncoder<double> model(16, 48);
  sae::InMemorySource<double> data(rows, 1);
  sae::Trainer<double> trainer(model, data, busy_config(6), 3);
  trainer.run();
  REQUIRE(trainer.input_scale() != 1.0);
  const auto exported = trainer.exported_model();
  const sae::Batch<double> X = rows.topRows(20);
  const sae::Batch<double> scaled = X * trainer.input_scale();
  CHECK(exported.encode(X).isApprox(model.encode(scaled), 1e-12));
  CHECK(exported.forward(X).recon.isApprox(model.forward(scaled).recon / trainer.input_scale(), 1e-12));
}

TEST_CASE("a non-finite input stops training with the step and row, keeping the checkpoint", "[trainer][errors]") {
  const TempDir dir("sae_test_trainer");
  sae::Batch<double> rows = synthetic_rows(64, 4);
  rows(40, 3) = std::numeric_limits<double>::quiet_NaN();
  sae::SparseAutoEncoder<double> model(16, 48);
  sae::InMemorySource<double> data(rows, 0, /*shuffle=*/false);
  auto config = sae::make_recipe(sae::Recipe::Seed, 10);
  config.batch_size = 16;
  sae::Trainer<double> trainer(model, data, config, 3);
  trainer.step();
  trainer.step();
  trainer.save_checkpoint(dir.file("ckpt"));
  const auto before = model.params();
  CHECK_THROWS_WITH(trainer.step(), Catch::Matchers::Contains("step 3") && Catch::Matchers::Contains("row 8"));
  CHECK(identical(model.params(), before));  // the model was not touched

  sae::SparseAutoEncoder<double> restored(16, 48);
  sae::InMemorySource<double> restored_data(rows, 0, false);
  sae::Trainer<double> again(restored, restored_data, config, 3);
  again.load_checkpoint(dir.file("ckpt"));
  CHECK(identical(restored.params(), before));
}

TEST_CASE("a non-finite loss stops training with the step", "[trainer][errors]") {
  sae::Batch<double> rows = synthetic_rows(64, 5) * 1e200;  // finite inputs, overflowing squares
  sae::SparseAutoEncoder<double> model(16, 48);
  sae::InMemorySource<double> data(rows, 0);
  auto config = sae::make_recipe(sae::Recipe::Seed, 10);
  config.batch_size = 16;
  sae::Trainer<double> trainer(model, data, config, 3);
  CHECK_THROWS_WITH(trainer.step(), Catch::Matchers::Contains("loss is not finite at step 1"));
}

TEST_CASE("checkpoints for another model size are refused", "[trainer][errors]") {
  const TempDir dir("sae_test_trainer");
  const auto rows = synthetic_rows(64, 6);
  sae::SparseAutoEncoder<double> model(16, 48);
  sae::InMemorySource<double> data(rows, 0);
  sae::Trainer<double> trainer(model, data, sae::make_recipe(sae::Recipe::Seed, 4), 3);
  trainer.save_checkpoint(dir.file("ckpt"));
  sae::SparseAutoEncoder<double> other(16, 40);
  sae::Trainer<double> other_trainer(other, data, sae::make_recipe(sae::Recipe::Seed, 4), 3);
  CHECK_THROWS_WITH(other_trainer.load_checkpoint(dir.file("ckpt")), Catch::Matchers::Contains("16 x 48"));
}
