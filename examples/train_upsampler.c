/*
 * train_upsampler.c -- train a small 3-D convolutional model in C, the way
 * one would in PyTorch, on data it makes itself.
 *
 * The task is denoising: each sample is a 32^3 volume holding a few
 * spheres and cubes of random size, place and brightness; the input is
 * that volume plus Gaussian noise, the target the clean volume. The model
 * goes down and back up in resolution, the shape of the bottom of a 3-D
 * U-Net:
 *
 *     model = nn.Sequential(
 *         nn.Conv3d(1, 32, 3, stride=2, padding=1),          # 32^3 -> 16^3
 *         nn.ReLU(),
 *         nn.ConvTranspose3d(32, 1, 4, stride=2, padding=1)) # 16^3 -> 32^3
 *     loss_fn = nn.MSELoss()
 *     opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
 *     sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
 *     loader = DataLoader(TensorDataset(noisy, clean), batch_size=8,
 *                         shuffle=True, generator=g)
 *     for epoch in range(epochs):
 *         for x, y in loader:
 *             opt.zero_grad()
 *             loss = loss_fn(model(x), y)
 *             loss.backward()
 *             opt.step()
 *         sched.step()
 *
 * and every line of that has its C counterpart below, the data and the
 * model in denoising.c, which train_distributed.c shares (the same task
 * trained by several processes). While it trains it prints one progress
 * line per epoch (loss, learning rate, samples/s, ETA), redrawn in place
 * when stdout is a terminal and as plain lines when it is piped. It
 * writes to the output directory (default upsampler_out/):
 *
 *   loss.svg               the loss curve (log scale), one point per epoch
 *   slices.pgm             the middle z-slice of a held-out volume: noisy
 *                          input | prediction | clean target (8-bit PGM)
 *   loss.tsv               epoch, mean training loss, learning rate
 *   model.safetensors      the weights (load them in Python with
 *                          safetensors.torch.load_file)
 *   optimizer.safetensors  AdamW's state (exp_avg, exp_avg_sq, step) and
 *                          hyperparameters, as optimizer.state_dict()
 *   train_state.safetensors  the settings, the epochs done and the loss
 *                          history (metadata only)
 *
 * The last three are rewritten after every epoch, so a run that is
 * stopped continues with --resume DIR exactly as if it had never stopped:
 * the data, the shuffling (reseeded every epoch), the weights, the
 * optimizer state and the learning rate are all restored, and the
 * continuation is bitwise the uninterrupted run's. Ctrl-C stops the run
 * cleanly at the end of the current epoch (a second Ctrl-C stops it at
 * once); --stop-after K stops it after epoch K.
 *
 * Usage: train_upsampler [options]
 *   --epochs N      epochs in the cosine schedule (default 40)
 *   --samples N     training volumes (256)      --batch N   batch size (8)
 *   --size S        volume edge, even (32)      --channels C  (32)
 *   --lr X          AdamW's learning rate (0.01)
 *   --noise X       noise standard deviation (0.1)
 *   --seed N        seeds the data, the weights and the shuffling (1)
 *   --threads N     cgrad's thread count (default: the library's)
 *   --short         a small setting for tests: 8^3 volumes, 16 samples,
 *                   batch 4, 8 channels, 6 epochs (well under a second);
 *                   the other options refine it
 *   --stop-after K  stop after epoch K (as if interrupted)
 *   --resume DIR    continue the run whose checkpoint is in DIR (same
 *                   settings; DIR may equal --out)
 *   --out DIR       output directory (default upsampler_out)
 * The embedded default setting takes about a minute on 2 cores.
 *
 * Build and run:  ./build/examples/train_upsampler
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, isatty, fileno, mkdir */
#include "cgrad_optim.h"
#include "denoising.h" /* the data and the model */

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ======================================================================
 * Settings and command line
 * ====================================================================== */

typedef struct settings {
    int epochs, samples, batch, size, channels;
    double lr, noise;
    uint64_t seed;
    int threads;    /* 0: the library's default */
    int stop_after; /* 0: run all epochs */
    const char *out, *resume;
} settings;

static settings default_settings(void)
{
    settings s;
    s.epochs = 40;
    s.samples = 256;
    s.batch = 8;
    s.size = 32;
    s.channels = 32;
    s.lr = 0.01;
    s.noise = 0.1;
    s.seed = 1;
    s.threads = 0;
    s.stop_after = 0;
    s.out = "upsampler_out";
    s.resume = NULL;
    return s;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: train_upsampler [--epochs N] [--samples N] [--batch N] "
               "[--size S]\n"
               "                       [--channels C] [--lr X] [--noise X] "
               "[--seed N]\n"
               "                       [--threads N] [--short] [--stop-after K]"
               "\n"
               "                       [--resume DIR] [--out DIR]\n");
}

/* An integer argument in [lo, hi]. */
static bool int_arg(const char *opt, const char *v, long lo, long hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || errno || x < lo || x > hi) {
        fprintf(stderr,
                "train_upsampler: %s expects an integer in [%ld, "
                "%ld], got '%s'\n",
                opt, lo, hi, v ? v : "");
        return false;
    }
    *out = (int)x;
    return true;
}

static bool real_arg(const char *opt, const char *v, double lo, double hi,
                     double *out)
{
    char *end = NULL;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr,
                "train_upsampler: %s expects a number in [%g, %g], "
                "got '%s'\n",
                opt, lo, hi, v ? v : "");
        return false;
    }
    *out = x;
    return true;
}

/* 0: run; 1: exit successfully (--help); -1: bad arguments. --short is
 * applied first, wherever it stands, so other options refine it. */
static int parse_args(int argc, char **argv, settings *s)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--short") == 0) {
            s->epochs = 6;
            s->samples = 16;
            s->batch = 4;
            s->size = 8;
            s->channels = 8;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int seed = 0;
        bool ok = true, takes = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--short") == 0) {
            takes = false;
        } else if (strcmp(a, "--epochs") == 0) {
            ok = int_arg(a, v, 1, 100000, &s->epochs);
        } else if (strcmp(a, "--samples") == 0) {
            ok = int_arg(a, v, 1, 1000000, &s->samples);
        } else if (strcmp(a, "--batch") == 0) {
            ok = int_arg(a, v, 1, 1000000, &s->batch);
        } else if (strcmp(a, "--size") == 0) {
            ok = int_arg(a, v, 4, 256, &s->size);
            if (ok && s->size % 2) {
                fprintf(stderr, "train_upsampler: --size must be even\n");
                ok = false;
            }
        } else if (strcmp(a, "--channels") == 0) {
            ok = int_arg(a, v, 1, 1024, &s->channels);
        } else if (strcmp(a, "--lr") == 0) {
            ok = real_arg(a, v, 0, 10, &s->lr);
        } else if (strcmp(a, "--noise") == 0) {
            ok = real_arg(a, v, 0, 10, &s->noise);
        } else if (strcmp(a, "--seed") == 0) {
            ok = int_arg(a, v, 0, 2147483647, &seed);
            s->seed = (uint64_t)seed;
        } else if (strcmp(a, "--threads") == 0) {
            ok = int_arg(a, v, 1, 1024, &s->threads);
        } else if (strcmp(a, "--stop-after") == 0) {
            ok = int_arg(a, v, 1, 100000, &s->stop_after);
        } else if (strcmp(a, "--resume") == 0) {
            ok = v != NULL;
            s->resume = v;
        } else if (strcmp(a, "--out") == 0) {
            ok = v != NULL;
            s->out = v;
        } else {
            fprintf(stderr, "train_upsampler: unknown option '%s'\n", a);
            ok = false;
        }
        if (!ok) {
            usage(stderr);
            return -1;
        }
        if (takes)
            i++;
    }
    if (s->stop_after > s->epochs)
        s->stop_after = 0;
    return 0;
}

/* ======================================================================
 * Errors: every cgrad call returns a cg_status; on failure print Python's
 * exception name and PyTorch's message, and leave through `fail`.
 * ====================================================================== */

#define TRY(expr)                                                              \
    do {                                                                       \
        cg_status st_ = (expr);                                                \
        if (st_ != CG_OK) {                                                    \
            fprintf(stderr, "train_upsampler: %s: %s: %s\n", #expr,            \
                    cg_status_name(st_), cg_last_error());                     \
            goto fail;                                                         \
        }                                                                      \
    } while (0)

/* ======================================================================
 * Evaluation (the data and the model themselves are in denoising.c)
 * ====================================================================== */

/* The model's mean squared error over n samples of (x, y), evaluated in
 * batches without recording a graph (with torch.no_grad()). */
static cg_status evaluate(cg_module *model, cg_tensor *x, cg_tensor *y,
                          int batch, double *loss)
{
    cg_status st = CG_OK;
    bool prev = cg_set_grad_enabled(false);
    int64_t n = cg_tensor_shape(x)[0];
    double sum = 0;
    for (int64_t i = 0; i < n && st == CG_OK; i += batch) {
        int64_t len = n - i < batch ? n - i : batch;
        cg_tensor *xb = NULL, *yb = NULL, *pred = NULL, *l = NULL;
        double v = 0;
        if (!(st = cg_tensor_narrow(x, 0, i, len, &xb)) &&
            !(st = cg_tensor_narrow(y, 0, i, len, &yb)) &&
            !(st = cg_module_forward(model, xb, &pred)) &&
            !(st = cg_mse_loss(pred, yb, "sum", &l)) &&
            !(st = cg_tensor_item(l, &v, NULL)))
            sum += v;
        cg_tensor_release(xb);
        cg_tensor_release(yb);
        cg_tensor_release(pred);
        cg_tensor_release(l);
    }
    cg_set_grad_enabled(prev);
    if (st == CG_OK)
        *loss = sum / (double)cg_tensor_numel(y);
    return st;
}

/* ======================================================================
 * Progress line
 * ====================================================================== */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "1:05" */
static void format_duration(double s, char *buf, size_t size)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

/* On a terminal the line is redrawn in place: carriage return, the text,
 * and "erase to end of line"; the last one ends with a newline. Piped or
 * redirected, every epoch gets its own plain line. */
static void progress(bool tty, int epoch, int epochs, double loss, double lr,
                     double samples_per_s, double eta_s, bool last)
{
    char eta[32];
    format_duration(eta_s, eta, sizeof eta);
    char line[192];
    snprintf(line, sizeof line,
             "epoch %*d/%d  loss %.6g  lr %.3e  %.0f samples/s  ETA %s",
             epochs >= 100 ? 3 : 2, epoch, epochs, loss, lr, samples_per_s,
             eta);
    if (tty)
        printf("\r%s\033[K%s", line, last ? "\n" : "");
    else
        printf("%s\n", line);
    fflush(stdout);
}

/* ======================================================================
 * Pictures: the loss curve as SVG, a slice as PGM
 * ====================================================================== */

/* The loss per epoch (losses[0] is epoch 1) on a log axis spanning whole
 * decades, with the untrained model's loss as a hollow marker at epoch
 * 0. One polyline point per epoch. */
static bool write_svg(const char *path, const double *losses, int n,
                      double initial)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    const double W = 640, H = 400, L = 70, R = 20, T = 40, B = 50;
    double lo = initial, hi = initial;
    for (int i = 0; i < n; i++) {
        lo = fmin(lo, losses[i]);
        hi = fmax(hi, losses[i]);
    }
    double d0 = floor(log10(lo)), d1 = ceil(log10(hi));
    if (d1 <= d0)
        d1 = d0 + 1;
    int xmax = n > 1 ? n : 1;
#define XS(e) (L + (W - L - R) * (double)(e) / xmax)
#define YS(v) (T + (H - T - B) * (d1 - log10(v)) / (d1 - d0))
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" "
            "height=\"%g\" viewBox=\"0 0 %g %g\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"%g\" height=\"%g\" fill=\"white\"/>\n", W, H);
    fprintf(f,
            "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" "
            "font-family=\"sans-serif\" font-size=\"15\">train_upsampler: "
            "mean training loss (MSE) per epoch</text>\n",
            W / 2);
    fprintf(f, "<g stroke=\"#ccc\" font-family=\"sans-serif\" "
               "font-size=\"11\">\n");
    for (double d = d0; d <= d1; d++) {
        double y = YS(pow(10, d));
        fprintf(f,
                "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\"/>"
                "<text x=\"%g\" y=\"%.2f\" text-anchor=\"end\" "
                "stroke=\"none\">1e%d</text>\n",
                L, y, W - R, y, L - 6, y + 4, (int)d);
    }
    int xstep = xmax <= 10 ? 1 : xmax <= 50 ? 5 : xmax <= 200 ? 20 : 100;
    for (int e = 0; e <= xmax; e += xstep)
        fprintf(f,
                "<text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\" "
                "stroke=\"none\">%d</text>\n",
                XS(e), H - B + 16, e);
    fprintf(f, "</g>\n");
    fprintf(f, "<path d=\"M%g %g V%g H%g\" fill=\"none\" stroke=\"black\"/>\n",
            L, T, H - B, W - R);
    fprintf(f,
            "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" "
            "font-family=\"sans-serif\" font-size=\"12\">epoch</text>\n",
            (L + W - R) / 2, H - 12);
    fprintf(f,
            "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"none\" "
            "stroke=\"#d62728\"><title>untrained: %.6g</title></circle>\n",
            XS(0), YS(initial), initial);
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" "
               "stroke-width=\"2\" points=\"");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.2f,%.2f", i ? " " : "", XS(i + 1), YS(losses[i]));
    fprintf(f, "\"/>\n</svg>\n");
#undef XS
#undef YS
    bool ok = !ferror(f);
    return fclose(f) == 0 && ok;
}

/* Three S x S slices side by side, each magnified to about 128 pixels,
 * 4 white pixels apart, values in [0, 1] mapped to 0..255 (clamped), as
 * a binary PGM ("P5 width height 255", then the rows). */
static bool write_pgm(const char *path, const float *const slices[3], int S)
{
    int zoom = S >= 128 ? 1 : (128 + S - 1) / S, gap = 4;
    int w = 3 * S * zoom + 2 * gap, h = S * zoom;
    unsigned char *row = cg_malloc((size_t)w);
    FILE *f = row ? fopen(path, "wb") : NULL;
    if (!f) {
        cg_free(row);
        return false;
    }
    fprintf(f, "P5\n%d %d\n255\n", w, h);
    for (int y = 0; y < h; y++) {
        memset(row, 255, (size_t)w);
        for (int p = 0; p < 3; p++)
            for (int x = 0; x < S * zoom; x++) {
                double v = slices[p][(y / zoom) * S + x / zoom];
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                row[p * (S * zoom + gap) + x] = (unsigned char)lround(v * 255);
            }
        fwrite(row, 1, (size_t)w, f);
    }
    cg_free(row);
    bool ok = !ferror(f);
    return fclose(f) == 0 && ok;
}

/* ======================================================================
 * Checkpoints
 * ====================================================================== */

static void path_in(char *buf, size_t size, const char *dir, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* The settings that must match for --resume, in train_state. */
static cg_status put_settings(cg_state_dict *sd, const settings *s)
{
    cg_status st;
    if ((st = cg_state_dict_set_number(sd, "epochs", s->epochs)) ||
        (st = cg_state_dict_set_number(sd, "samples", s->samples)) ||
        (st = cg_state_dict_set_number(sd, "batch", s->batch)) ||
        (st = cg_state_dict_set_number(sd, "size", s->size)) ||
        (st = cg_state_dict_set_number(sd, "channels", s->channels)) ||
        (st = cg_state_dict_set_number(sd, "lr", s->lr)) ||
        (st = cg_state_dict_set_number(sd, "noise", s->noise)) ||
        (st = cg_state_dict_set_number(sd, "seed", (double)s->seed)))
        return st;
    return CG_OK;
}

/* Writes model, optimizer and train_state after `done` epochs. */
static cg_status save_checkpoint(const char *dir, const settings *s,
                                 cg_module *model, cg_optimizer *opt, int done,
                                 double initial, const double *losses)
{
    char path[4096], key[32];
    cg_state_dict *osd = NULL, *tsd = NULL;
    cg_status st;
    path_in(path, sizeof path, dir, "model.safetensors");
    if ((st = cg_module_save_safetensors(model, path)))
        return st;
    path_in(path, sizeof path, dir, "optimizer.safetensors");
    if ((st = cg_optimizer_state_dict(opt, &osd)) ||
        (st = cg_safetensors_save(osd, path)))
        goto done;
    if ((st = cg_state_dict_new(&tsd)) || (st = put_settings(tsd, s)) ||
        (st = cg_state_dict_set_number(tsd, "epochs_done", done)) ||
        (st = cg_state_dict_set_number(tsd, "initial_loss", initial)))
        goto done;
    for (int e = 0; e < done; e++) {
        snprintf(key, sizeof key, "loss.%d", e + 1);
        if ((st = cg_state_dict_set_number(tsd, key, losses[e])))
            goto done;
    }
    path_in(path, sizeof path, dir, "train_state.safetensors");
    st = cg_safetensors_save(tsd, path);
done:
    cg_state_dict_free(osd);
    cg_state_dict_free(tsd);
    return st;
}

static bool number_of(const cg_state_dict *sd, const char *key, double *v)
{
    int i = cg_state_dict_find(sd, key);
    cg_state_kind kind;
    return i >= 0 &&
           cg_state_dict_entry(sd, i, NULL, &kind, NULL, v) == CG_OK &&
           kind == CG_STATE_NUMBER;
}

/* Reads DIR/train_state.safetensors: checks the settings, returns the
 * epochs done, the initial loss and the loss history. */
static cg_status load_train_state(const char *dir, const settings *s, int *done,
                                  double *initial, double *losses)
{
    char path[4096], key[32];
    cg_state_dict *sd = NULL, *want = NULL;
    path_in(path, sizeof path, dir, "train_state.safetensors");
    cg_status st = cg_safetensors_load(path, &sd);
    if (st || (st = cg_state_dict_new(&want)) || (st = put_settings(want, s)))
        goto done;
    for (int i = 0; i < cg_state_dict_size(want); i++) {
        const char *name = NULL;
        double expect = 0, have = 0;
        cg_state_dict_entry(want, i, &name, NULL, NULL, &expect);
        if (!number_of(sd, name, &have) || have != expect) {
            st = cg_error(CG_ERR_VALUE,
                          "the checkpoint in %s was made with %s %g, this "
                          "run has %g",
                          dir, name, have, expect);
            goto done;
        }
    }
    double d = 0;
    if (!number_of(sd, "epochs_done", &d) || d < 1 || d > s->epochs ||
        !number_of(sd, "initial_loss", initial)) {
        st = cg_error(CG_ERR_VALUE, "%s: no valid epochs_done/initial_loss",
                      path);
        goto done;
    }
    *done = (int)d;
    for (int e = 0; e < *done; e++) {
        snprintf(key, sizeof key, "loss.%d", e + 1);
        if (!number_of(sd, key, &losses[e])) {
            st = cg_error(CG_ERR_VALUE, "%s: %s is missing", path, key);
            goto done;
        }
    }
done:
    cg_state_dict_free(sd);
    cg_state_dict_free(want);
    return st;
}

/* Ctrl-C asks the loop to stop after the epoch it is in; the handler
 * then steps aside, so a second Ctrl-C ends the program at once. */
static volatile sig_atomic_t interrupted = 0;

static void on_sigint(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

static bool make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST)
        return true;
    fprintf(stderr, "train_upsampler: cannot create %s: %s\n", dir,
            strerror(errno));
    return false;
}

/* ======================================================================
 * main: the training loop
 * ====================================================================== */

int main(int argc, char **argv)
{
    double t_program = now_seconds();
    settings s = default_settings();
    int parsed = parse_args(argc, argv, &s);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    if (!make_dir(s.out))
        return 1;
    if (s.threads > 0 && cg_set_num_threads(s.threads) != CG_OK) {
        fprintf(stderr, "train_upsampler: %s\n", cg_last_error());
        return 1;
    }

    int rc = 1, done = 0;
    int last = s.stop_after ? s.stop_after : s.epochs;
    const int S = s.size;
    bool tty = isatty(fileno(stdout));
    double initial = 0, *losses = cg_calloc((size_t)s.epochs, sizeof *losses);
    char path[4096];
    cg_generator *data_gen = NULL, *shuffle_gen = NULL;
    cg_tensor *noisy = NULL, *clean = NULL, *val_noisy = NULL,
              *val_clean = NULL, *val_pred = NULL;
    cg_module *model = NULL, *loss_fn = NULL;
    cg_optimizer *opt = NULL;
    cg_lr_scheduler *sched = NULL;
    cg_dataloader *loader = NULL;
    cg_tensor **params = NULL;
    if (!losses)
        goto fail;

    /* The data: s.samples training volumes, then one held-out volume. */
    TRY(cg_generator_new(s.seed, &data_gen));
    TRY(denoising_make_data(data_gen, s.samples, S, s.noise, &noisy, &clean));
    TRY(denoising_make_data(data_gen, 1, S, s.noise, &val_noisy, &val_clean));

    /* torch.manual_seed(seed); model = ...; the weights come from the
     * default generator exactly as in PyTorch. */
    cg_manual_seed(s.seed);
    TRY(denoising_make_model(s.channels, &model));
    TRY(cg_mse_loss_new(NULL, &loss_fn));
    int np = cg_module_num_parameters(model);
    int64_t nweights = 0;
    params = cg_calloc((size_t)np, sizeof *params);
    if (!params)
        goto fail;
    for (int i = 0; i < np; i++) {
        TRY(cg_module_named_parameter(model, i, NULL, &params[i]));
        nweights += cg_tensor_numel(params[i]);
    }

    /* opt = AdamW(model.parameters(), lr); sched = CosineAnnealingLR */
    cg_adamw_options ao = cg_adamw_defaults();
    ao.lr = s.lr;
    TRY(cg_adamw_new(params, np, &ao, &opt));
    cg_cosine_annealing_lr_options co =
        cg_cosine_annealing_lr_defaults(s.epochs);
    TRY(cg_cosine_annealing_lr_new(opt, &co, &sched));

    /* loader = DataLoader(TensorDataset(noisy, clean), batch_size,
     *                     shuffle=True, generator=shuffle_gen) */
    TRY(cg_generator_new(s.seed, &shuffle_gen));
    cg_dataloader_options lo = cg_dataloader_defaults();
    lo.batch_size = s.batch;
    lo.shuffle = true;
    lo.generator = shuffle_gen;
    cg_tensor *dataset[2] = {noisy, clean};
    TRY(cg_dataloader_new(dataset, 2, &lo, &loader));

    printf("train_upsampler: denoising %d^3 volumes of spheres and cubes "
           "(noise sigma %g)\n",
           S, s.noise);
    printf("model: Conv3d(1, %d, 3, stride=2, padding=1) -> ReLU -> "
           "ConvTranspose3d(%d, 1, 4, stride=2, padding=1), %lld "
           "parameters\n",
           s.channels, s.channels, (long long)nweights);
    printf("data: %d training volumes + 1 held out, batch %d; AdamW lr %g "
           "+ CosineAnnealingLR(T_max=%d); %d threads\n",
           s.samples, s.batch, s.lr, s.epochs, cg_get_num_threads());

    if (s.resume) {
        /* Rebuild the run's state: the schedule is replayed (it is a pure
         * function of the epoch), then the optimizer's state and lr and
         * the weights are loaded. */
        TRY(load_train_state(s.resume, &s, &done, &initial, losses));
        for (int e = 0; e < done; e++)
            TRY(cg_lr_scheduler_step(sched));
        cg_state_dict *osd = NULL;
        path_in(path, sizeof path, s.resume, "optimizer.safetensors");
        TRY(cg_safetensors_load(path, &osd));
        cg_status st = cg_optimizer_load_state_dict(opt, osd);
        cg_state_dict_free(osd);
        TRY(st);
        path_in(path, sizeof path, s.resume, "model.safetensors");
        TRY(cg_module_load_safetensors(model, path, true));
        printf("resumed from %s after epoch %d of %d (initial loss %.6g)\n",
               s.resume, done, s.epochs, initial);
    } else {
        TRY(evaluate(model, noisy, clean, s.batch, &initial));
        printf("initial loss %.6g (the untrained model on the training "
               "set)\n",
               initial);
    }
    fflush(stdout);

    double t_start = now_seconds();
    const int first = done;
    signal(SIGINT, on_sigint);
    for (int epoch = done; epoch < last && !interrupted; epoch++) {
        double t0 = now_seconds(), sum = 0;
        /* Reseeding the shuffle every epoch makes epoch e's order a
         * function of (seed, e) alone, so a resumed run draws the same. */
        cg_generator_manual_seed(shuffle_gen, s.seed * 1000003u + epoch);
        TRY(cg_module_train(model, true));
        for (;;) {
            cg_tensor *batch[2] = {NULL, NULL}, *pred = NULL, *loss = NULL;
            bool has = false;
            TRY(cg_dataloader_next(loader, batch, &has));
            if (!has)
                break;
            double v = 0;
            cg_status st;
            if (!(st = cg_optimizer_zero_grad(opt, false)) &&
                !(st = cg_module_forward(model, batch[0], &pred)) &&
                !(st = cg_loss_forward(loss_fn, pred, batch[1], &loss)) &&
                !(st = cg_tensor_item(loss, &v, NULL)) &&
                !(st = cg_tensor_backward(loss, NULL, false)))
                st = cg_optimizer_step(opt);
            sum += v * (double)cg_tensor_shape(batch[0])[0];
            cg_tensor_release(loss);
            cg_tensor_release(pred);
            cg_tensor_release(batch[0]);
            cg_tensor_release(batch[1]);
            TRY(st);
        }
        double lr = 0;
        TRY(cg_optimizer_get_lr(opt, 0, &lr)); /* the lr this epoch used */
        TRY(cg_lr_scheduler_step(sched));
        losses[epoch] = sum / s.samples;
        double t1 = now_seconds(); /* samples/s counts training only */
        done = epoch + 1;
        TRY(save_checkpoint(s.out, &s, model, opt, done, initial, losses));
        double per_epoch = (now_seconds() - t_start) / (done - first);
        progress(tty, done, s.epochs, losses[epoch], lr, s.samples / (t1 - t0),
                 per_epoch * (last - done), done == last || interrupted);
    }
    double t_train = now_seconds() - t_start;
    signal(SIGINT, SIG_DFL);
    if (done < s.epochs)
        printf("stopped after epoch %d of %d; continue with --resume %s\n",
               done, s.epochs, s.out);

    /* The held-out volume: loss, and the middle slice as a picture. */
    {
        bool prev = cg_set_grad_enabled(false);
        cg_status st = cg_module_forward(model, val_noisy, &val_pred);
        cg_set_grad_enabled(prev);
        TRY(st);
    }
    double val_loss = 0, val_in = 0;
    TRY(evaluate(model, val_noisy, val_clean, 1, &val_loss));
    {
        cg_tensor *l = NULL;
        TRY(cg_mse_loss(val_noisy, val_clean, NULL, &l));
        cg_status st = cg_tensor_item(l, &val_in, NULL);
        cg_tensor_release(l);
        TRY(st);
    }
    const int64_t mid = (int64_t)(S / 2) * S * S;
    const float *slices[3] = {(const float *)cg_tensor_data(val_noisy) + mid,
                              (const float *)cg_tensor_data(val_pred) + mid,
                              (const float *)cg_tensor_data(val_clean) + mid};

    double final_loss = losses[done - 1];
    printf("final loss %.6g after epoch %d: %.1fx below the initial %.6g "
           "(%.1fx below epoch 1)\n",
           final_loss, done, initial / final_loss, initial,
           losses[0] / final_loss);
    printf("held-out volume: loss %.6g (the noisy input's is %.6g)\n", val_loss,
           val_in);

    path_in(path, sizeof path, s.out, "loss.svg");
    if (!write_svg(path, losses, done, initial)) {
        fprintf(stderr, "train_upsampler: cannot write %s\n", path);
        goto fail;
    }
    path_in(path, sizeof path, s.out, "slices.pgm");
    if (!write_pgm(path, slices, S)) {
        fprintf(stderr, "train_upsampler: cannot write %s\n", path);
        goto fail;
    }
    path_in(path, sizeof path, s.out, "loss.tsv");
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "train_upsampler: cannot write %s\n", path);
        goto fail;
    }
    fprintf(f, "epoch\tloss\n");
    for (int e = 0; e < done; e++)
        fprintf(f, "%d\t%.17g\n", e + 1, losses[e]);
    if (fclose(f) != 0)
        goto fail;
    printf("wrote %s/loss.svg, slices.pgm (input | prediction | target), "
           "loss.tsv, model.safetensors, optimizer.safetensors, "
           "train_state.safetensors\n",
           s.out);
    printf("time %.1f s (training %.1f s, %.0f samples/s)\n",
           now_seconds() - t_program, t_train,
           done > first ? (double)(done - first) * s.samples / t_train : 0.0);
    rc = 0;
fail:
    cg_dataloader_free(loader);
    cg_lr_scheduler_free(sched);
    cg_optimizer_free(opt);
    cg_module_free(loss_fn);
    cg_module_free(model);
    cg_tensor_release(noisy);
    cg_tensor_release(clean);
    cg_tensor_release(val_noisy);
    cg_tensor_release(val_clean);
    cg_tensor_release(val_pred);
    cg_generator_free(data_gen);
    cg_generator_free(shuffle_gen);
    cg_free(params);
    cg_free(losses);
    return rc;
}
