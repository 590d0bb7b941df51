"""The course manifest: phases, weeks, lessons (English and Chinese titles), capstones
and milestones. README.md, README.zh-CN.md, `dlcourse list/progress` and the tests all
read this one list, so it is the single place to add a lesson.

A lesson's file is `<phase folder>/<NN>-<slug>.py`; a capstone's is
`<phase folder>/capstone-<slug>.py`. Ids: '01.03' for lesson 03 of phase 1,
'01.capstone' for phase 1's capstone ('06.capstone1', '06.capstone2' where a phase has two).
A phase is `ready` once all its files exist; planned phases appear in the README plan
without checkboxes.
"""
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Lesson:
    phase: int
    key: str          # '03' for a lesson, 'capstone' / 'capstone1' for a capstone
    slug: str         # file-name part after the number: 'numpy-basics'
    title: str
    title_zh: str
    week: int
    folder: str

    @property
    def id(self):
        return f"{self.phase:02d}.{self.key}"

    @property
    def is_capstone(self):
        return self.key.startswith("capstone")

    @property
    def path(self):
        """Path relative to the course folder."""
        stem = f"capstone-{self.slug}" if self.is_capstone else f"{self.key}-{self.slug}"
        return f"{self.folder}/{stem}.py"


@dataclass(frozen=True)
class Phase:
    number: int
    folder: str
    title: str
    title_zh: str
    weeks: tuple      # (first, last)
    ready: bool
    lessons: list = field(default_factory=list)   # lessons then capstones


@dataclass(frozen=True)
class Milestone:
    """What the learner can do at the end of a phase, and the runs that show it: the
    milestone is reached when every lesson and capstone in `verified_by` is done."""
    phase: int
    text: str
    text_zh: str
    verified_by: tuple   # lesson ids; ids of planned phases are shown, not yet checkable

    @property
    def week(self):
        """The last week of its phase."""
        return next(p.weeks[1] for p in PHASES if p.number == self.phase)


def _phase(number, folder, title, title_zh, weeks, ready, lessons=(), capstones=()):
    """lessons: (slug, title, title_zh, week); capstones: (slug, title, title_zh, week)."""
    items = [Lesson(number, f"{i:02d}", slug, t, tz, w, folder)
             for i, (slug, t, tz, w) in enumerate(lessons, start=1)]
    for k, (slug, t, tz, w) in enumerate(capstones, start=1):
        key = "capstone" if len(capstones) == 1 else f"capstone{k}"
        items.append(Lesson(number, key, slug, t, tz, w, folder))
    return Phase(number, folder, title, title_zh, weeks, ready, items)


PHASES = [
    _phase(1, "phase01-python-ds", "Python for data science: NumPy, Pandas, Matplotlib",
           "Python 数据科学（NumPy、Pandas、Matplotlib）", (1, 1), True, [
               ("numpy-basics", "NumPy basics: arrays, dtypes, views vs copies",
                "NumPy 基础：数组、数据类型、视图与副本", 1),
               ("numpy-operations", "NumPy operations: vectorisation and broadcasting",
                "NumPy 运算：向量化与广播", 1),
               ("numpy-linear-algebra", "NumPy linear algebra: solve, norms, eig, lstsq",
                "NumPy 线性代数：求解、范数、特征值、最小二乘", 1),
               ("pandas-basics", "Pandas basics: Series, DataFrame, groupby, merge",
                "Pandas 基础：Series、DataFrame、分组、合并", 1),
               ("pandas-preprocessing", "Pandas preprocessing: missing values, encoding, "
                "leakage-free splits", "Pandas 预处理：缺失值、编码、无泄漏划分", 1),
               ("matplotlib-basics", "Matplotlib basics: the four plots and saving headless",
                "Matplotlib 基础：四种常用图表与无界面保存", 1),
               ("visualization-advanced", "Advanced visualisation: grids, heatmaps, annotations",
                "进阶可视化：子图网格、热力图、标注", 1),
           ], [("eda", "Capstone: exploratory data analysis (Titanic / Iris)",
                "综合项目：探索性数据分析（Titanic / Iris）", 1)]),
    _phase(2, "phase02-math", "Mathematics and classical machine learning",
           "数学基础与经典机器学习", (2, 3), True, [
               ("vectors-matrices", "Vectors and matrices: projections, rank, linear maps",
                "向量与矩阵：投影、秩、线性映射", 2),
               ("eigenvalue-svd", "Eigenvalues and SVD: low-rank approximation",
                "特征值与奇异值分解：低秩近似", 2),
               ("derivatives-gradients", "Derivatives, gradients and Jacobians",
                "导数、梯度与雅可比矩阵", 2),
               ("chain-rule", "The chain rule and backprop by hand", "链式法则与手写反向传播", 2),
               ("optimization-basics", "Gradient descent and learning-rate regimes",
                "梯度下降：学习率决定收敛还是发散", 2),
               ("probability-basics", "Probability: distributions, CLT, Bayes",
                "概率：分布、中心极限定理、贝叶斯", 2),
               ("entropy-kl-divergence", "Entropy, cross-entropy and KL divergence",
                "熵、交叉熵与 KL 散度", 2),
               ("mle-map", "MLE and MAP: priors as regularisation", "最大似然与最大后验：先验即正则化", 2),
               ("linear-regression", "Linear regression: normal equations and gradient descent",
                "线性回归：正规方程与梯度下降", 3),
               ("logistic-regression", "Logistic regression: the gradient by hand",
                "逻辑回归：手推梯度", 3),
               ("svm", "Support vector machines: hinge loss, margins, kernels",
                "支持向量机：合页损失、间隔、核函数", 3),
               ("trees-and-ensembles", "Decision trees, random forests, gradient boosting",
                "决策树、随机森林与梯度提升", 3),
               ("knn-kmeans", "KNN and k-means", "K 近邻与 K 均值", 3),
               ("pca", "PCA by SVD", "用 SVD 做主成分分析", 3),
               ("model-evaluation", "Model evaluation: metrics, ROC/PR, cross-validation",
                "模型评估：指标、ROC/PR、交叉验证", 3),
               ("bias-variance", "Bias, variance and regularisation", "偏差、方差与正则化", 3),
               ("feature-engineering", "Feature engineering and pipelines",
                "特征工程与流水线", 3),
               ("generative-vs-discriminative",
                "Generative vs discriminative models; EM for a Gaussian mixture",
                "生成模型与判别模型；高斯混合模型的 EM 算法", 3),
           ], [("gradients-by-hand", "Capstone: loss and gradient by hand",
                "综合项目：手推损失与梯度", 3)]),
    _phase(3, "phase03-pytorch", "PyTorch core", "PyTorch 核心", (4, 4), True, [
        ("tensor-basics", "Tensor basics: creation, dtype, device, NumPy interop",
         "张量基础：创建、数据类型、设备及与 NumPy 互转", 4),
        ("tensor-operations", "Tensor operations: views, broadcasting, einsum",
         "张量运算：视图、广播、einsum", 4),
        ("tensor-autograd", "Autograd: graphs, backward, custom Functions",
         "自动求导：计算图、反向传播、自定义 Function", 4),
        ("nn-module", "nn.Module: parameters, buffers, state_dict, hooks",
         "nn.Module：参数、缓冲区、state_dict、钩子", 4),
        ("loss-functions", "Loss functions from scratch", "从零实现损失函数", 4),
        ("optimizers", "Optimisers from scratch: SGD, momentum, Adam", "从零实现优化器：SGD、动量、Adam", 4),
        ("dataset-dataloader", "Dataset and DataLoader", "Dataset 与 DataLoader", 4),
        ("data-augmentation", "Data augmentation with transforms v2, Mixup/CutMix",
         "数据增强：transforms v2、Mixup/CutMix", 4),
        ("training-loop", "The training loop, by hand and shared", "训练循环：手写版与共享版", 4),
        ("model-save-load", "Saving, loading and resuming", "模型保存、加载与断点续训", 4),
        ("gpu-memory", "Where GPU memory goes", "GPU 显存都去哪儿了", 4),
        ("debugging-shapes-dtypes-devices", "Debugging shapes, dtypes and devices",
         "调试形状、数据类型与设备错误", 4),
    ], [("mnist", "Capstone: MNIST classifier", "综合项目：MNIST 手写数字分类", 4)]),
    _phase(4, "phase04-mlp", "Neural-network foundations", "神经网络基础", (5, 5), True, [
        ("perceptron", "The perceptron and XOR", "感知机与异或问题", 5),
        ("mlp-basic", "A multilayer perceptron by hand", "手写多层感知机", 5),
        ("forward-backward", "Forward and backward by hand", "手写前向与反向传播", 5),
        ("activation-functions", "Activation functions and their derivatives", "激活函数及其导数", 5),
        ("activation-comparison", "Comparing activations; dead ReLUs", "激活函数对比与死亡 ReLU", 5),
        ("dropout", "Dropout from scratch", "从零实现 Dropout", 5),
        ("batch-normalization", "BatchNorm and LayerNorm from scratch", "从零实现批量归一化与层归一化", 5),
        ("weight-regularization", "L1/L2 penalties and decoupled weight decay",
         "L1/L2 正则化与解耦权重衰减", 5),
        ("weight-init", "Weight initialisation: vanishing and exploding",
         "权重初始化：梯度消失与梯度爆炸", 5),
    ], [("house-prices", "Capstone: house-price regression", "综合项目：房价预测", 5)]),
    _phase(5, "phase05-cnn", "Convolutional networks", "卷积神经网络", (6, 7), True, [
        ("convolution-basics", "Convolution from loops to im2col", "卷积：从循环到 im2col", 6),
        ("pooling-layers", "Pooling layers", "池化层", 6),
        ("receptive-field", "Receptive fields, analytic and measured", "感受野：解析计算与实测", 6),
        ("lenet", "LeNet", "LeNet", 6),
        ("alexnet", "AlexNet", "AlexNet", 6),
        ("vggnet", "VGG", "VGG", 6),
        ("resnet", "ResNet-18 from scratch", "从零实现 ResNet-18", 7),
        ("resnet-variants", "ResNet-34/50/101: BasicBlock and Bottleneck",
         "ResNet-34/50/101：BasicBlock 与 Bottleneck", 7),
        ("mobilenet", "MobileNet: depthwise separable convolution", "MobileNet：深度可分离卷积", 7),
        ("efficientnet", "EfficientNet: MBConv, squeeze-excitation, compound scaling",
         "EfficientNet：MBConv、SE 模块、复合缩放", 7),
        ("feature-visualization", "Seeing what a CNN learned", "可视化 CNN 学到的特征", 7),
        ("grad-cam", "Grad-CAM", "Grad-CAM 类激活图", 7),
    ], [("cifar10", "Capstone: fast CIFAR-10", "综合项目：快速 CIFAR-10 分类", 7)]),
    _phase(6, "phase06-rnn", "Recurrent networks", "循环神经网络", (8, 9), True, [
        ("rnn-basics", "An RNN cell from scratch", "从零实现 RNN 单元", 8),
        ("bptt", "Backpropagation through time by hand", "手写随时间反向传播（BPTT）", 8),
        ("vanishing-gradient", "Vanishing gradients in time: RNN vs LSTM, clipping",
         "沿时间的梯度消失：RNN 与 LSTM 对比、梯度裁剪", 8),
        ("lstm", "LSTM from scratch", "从零实现 LSTM", 8),
        ("gru", "GRU from scratch", "从零实现 GRU", 8),
        ("bidirectional", "Bidirectional and stacked RNNs", "双向与多层 RNN", 8),
        ("seq2seq", "Sequence to sequence with teacher forcing", "序列到序列与教师强制", 9),
        ("attention-basic", "Attention in seq2seq", "seq2seq 中的注意力机制", 9),
        ("time-series", "Time-series forecasting: windows, baselines, an LSTM",
         "时间序列预测：滑动窗口、基线与 LSTM", 9),
        ("sequence-masking-packing", "Padding masks and packed sequences", "填充掩码与打包序列", 9),
    ], [("char-lm", "Capstone: a character-level language model", "综合项目：字符级语言模型", 9),
        ("forecasting", "Capstone: time-series forecasting, honestly evaluated",
         "综合项目：时间序列预测的严谨评估", 9)]),
    _phase(7, "phase07-transformer", "Transformers", "Transformer", (10, 12), True, [
        ("self-attention", "Scaled dot-product attention with padding and causal masks",
         "缩放点积注意力：填充掩码与因果掩码", 10),
        ("multi-head-attention", "Multi-head attention", "多头注意力", 10),
        ("positional-encoding", "Positional encodings: sinusoidal, learned, RoPE",
         "位置编码：正弦、可学习与 RoPE", 10),
        ("transformer-encoder", "The Transformer encoder layer", "Transformer 编码器层", 10),
        ("transformer-decoder", "The Transformer decoder layer", "Transformer 解码器层", 10),
        ("transformer-full", "An encoder-decoder Transformer trained on a toy task",
         "在玩具任务上训练完整的编码器-解码器 Transformer", 11),
        ("bert-architecture", "BERT from scratch", "从零实现 BERT", 11),
        ("bert-finetuning", "Fine-tuning BERT for sequence classification", "微调 BERT 做序列分类", 11),
        ("gpt-architecture", "GPT-2 from scratch", "从零实现 GPT-2", 11),
        ("gpt-generation", "Text generation: greedy, sampling, beam search, KV cache",
         "文本生成：贪心、采样、束搜索与 KV 缓存", 12),
        ("linear-attention", "Research question: does attention need softmax? (linear attention)",
         "研究问题：注意力一定需要 softmax 吗？（线性注意力）", 12),
        ("attention-pooling-din", "Target attention (DIN) and attention pooling",
         "目标注意力（DIN）与注意力池化", 12),
        ("multi-sequence-causal", "Research question: causal representations of multi-sequence behaviour",
         "研究问题：多序列用户行为的因果表示", 12),
    ], [("translation", "Capstone: Transformer machine translation", "综合项目：Transformer 机器翻译", 12),
        ("bert-sentiment", "Capstone: BERT sentiment fine-tuning", "综合项目：BERT 情感分类微调", 12)]),
    _phase(8, "phase08-generative", "Generative models", "生成模型", (13, 14), False),
    _phase(9, "phase09-training", "Training techniques", "训练技巧", (15, 16), False),
    _phase(10, "phase10-cv", "Computer vision", "计算机视觉", (17, 18), False),
    _phase(11, "phase11-nlp", "Natural language processing", "自然语言处理", (19, 20), False),
    _phase(12, "phase12-llm", "Large language models", "大语言模型", (21, 24), False),
]

MILESTONES = [
    Milestone(3, "NumPy/Pandas fluent, gradient descent and backprop understood, a PyTorch model "
              "built alone, MNIST done.",
              "熟练使用 NumPy/Pandas，理解梯度下降与反向传播，能独立搭建 PyTorch 模型，完成 MNIST 项目。",
              ("01.capstone", "02.05", "02.capstone", "03.09", "03.capstone")),
    Milestone(6, "Classic CNN architectures implemented, RNN/LSTM sequence modelling, CIFAR-10 "
              "done, text generation done.",
              "实现经典 CNN 架构，掌握 RNN/LSTM 序列建模，完成 CIFAR-10 分类与文本生成项目。",
              ("05.04", "05.06", "05.07", "05.capstone", "06.04", "06.07", "06.capstone1")),
    Milestone(8, "Transformer understood in depth, BERT/GPT fine-tuned, GAN/VAE/diffusion "
              "principles, translation done.",
              "深入理解 Transformer，完成 BERT/GPT 微调，掌握 GAN/VAE/扩散模型原理，完成机器翻译。",
              ("07.06", "07.09", "07.capstone1", "07.capstone2", "08.03", "08.05", "08.07")),
    Milestone(11, "Industrial training techniques, detection and segmentation, NLP tasks with "
              "pretrained models, detection and sentiment projects done.",
              "掌握工业级训练技巧、目标检测与分割、基于预训练模型的 NLP 任务，完成检测与情感分析项目。",
              ("09.05", "09.08", "09.capstone", "10.05", "10.capstone", "11.07", "11.capstone")),
    Milestone(12, "The LLM training pipeline, parameter-efficient fine-tuning, designing a "
              "deep-learning system alone, the LLM fine-tuning project done.",
              "掌握大模型训练流程与参数高效微调，能独立设计深度学习系统，完成大模型微调项目。",
              ("11.08", "12.04", "12.05", "12.08", "12.14", "12.capstone")),
]


def lessons(ready_only=True):
    """Every lesson and capstone, in course order."""
    return [lesson for p in PHASES if p.ready or not ready_only for lesson in p.lessons]


def find(lesson_id):
    """Lesson by id ('01.03', '1.3', '01.capstone') or by path; None if unknown."""
    text = str(lesson_id).strip()
    if text.endswith(".py") or "/" in text or "\\" in text:
        return find_by_path(text)
    if "." in text:
        phase, key = text.split(".", 1)
        if phase.isdigit():
            key = f"{int(key):02d}" if key.isdigit() else key
            text = f"{int(phase):02d}.{key}"
    return next((lesson for lesson in lessons(ready_only=False) if lesson.id == text), None)


def find_by_path(path):
    """Lesson whose file is `path` (absolute, or relative to the course folder)."""
    path = Path(path)
    try:
        rel = path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        rel = path.as_posix()
    return next((lesson for lesson in lessons(ready_only=False) if lesson.path == rel), None)


def weeks():
    """{week: [lessons]} for the ready phases, in course order."""
    plan = {}
    for lesson in lessons():
        plan.setdefault(lesson.week, []).append(lesson)
    return plan
